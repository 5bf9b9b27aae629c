package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	rgtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const (
	image  = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
	role   = "arn:aws:iam::123456789012:role/SageMakerExecution"
	bucket = "conformance"
	key    = "echo/model.tar.gz"
	owner  = "djl-operator.io/owner-uid"
	uid    = "uid-conformance"
)

var ownerTags = []smtypes.Tag{{Key: aws.String(owner), Value: aws.String(uid)}}

func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func (w *world) waitInService(ctx context.Context, c *checker, name string) error {
	waiter := sagemaker.NewEndpointInServiceWaiter(w.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	return waiter.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 60*time.Second)
}

func (w *world) describe(ctx context.Context, c *checker, name, what string) *sagemaker.DescribeEndpointOutput {
	out, err := w.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if !c.call("DescribeEndpoint "+what, err) {
		return nil
	}
	c.present("DescribeEndpoint "+what, map[string]any{
		"EndpointName": out.EndpointName, "EndpointArn": out.EndpointArn, "EndpointConfigName": out.EndpointConfigName,
		"EndpointStatus": string(out.EndpointStatus), "CreationTime": out.CreationTime, "LastModifiedTime": out.LastModifiedTime,
	})
	switch out.EndpointStatus {
	case smtypes.EndpointStatusInService, smtypes.EndpointStatusUpdating, smtypes.EndpointStatusRollingBack:
		if len(out.ProductionVariants) == 0 {
			c.fail("DescribeEndpoint %s: ProductionVariants missing while %s", what, out.EndpointStatus)
		}
		for _, v := range out.ProductionVariants {
			c.present("DescribeEndpoint "+what+" variant", map[string]any{
				"VariantName": v.VariantName, "CurrentInstanceCount": v.CurrentInstanceCount,
				"DesiredInstanceCount": v.DesiredInstanceCount, "CurrentWeight": v.CurrentWeight,
				"DesiredWeight": v.DesiredWeight, "DeployedImages": len(v.DeployedImages),
			})
			for _, d := range v.DeployedImages {
				c.present("DeployedImage", map[string]any{
					"SpecifiedImage": d.SpecifiedImage, "ResolvedImage": d.ResolvedImage, "ResolutionTime": d.ResolutionTime,
				})
			}
		}
	case smtypes.EndpointStatusFailed:
		c.present("DescribeEndpoint "+what, map[string]any{"FailureReason": out.FailureReason})
	}
	if out.EndpointStatus == smtypes.EndpointStatusCreating || out.EndpointStatus == smtypes.EndpointStatusUpdating {
		if out.PendingDeploymentSummary == nil {
			c.fail("DescribeEndpoint %s: PendingDeploymentSummary missing while %s", what, out.EndpointStatus)
		} else {
			c.present("PendingDeploymentSummary", map[string]any{"EndpointConfigName": out.PendingDeploymentSummary.EndpointConfigName})
		}
	}
	return out
}

func (w *world) invoke(ctx context.Context, c *checker, name, body, want, what string) {
	out, err := w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(name), Body: []byte(body), ContentType: aws.String("text/plain"),
	})
	if !c.call("InvokeEndpoint "+what, err) {
		return
	}
	c.present("InvokeEndpoint", map[string]any{"ContentType": out.ContentType, "InvokedProductionVariant": out.InvokedProductionVariant})
	c.equal("InvokeEndpoint "+what+" body", string(out.Body), want)
}

// invokeStream reads InvokeEndpointWithResponseStream's event stream through the SDK's own decoder
// (the application/vnd.amazon.eventstream framing): the PayloadParts, joined, are the body.
func (w *world) invokeStream(ctx context.Context, c *checker, name, body, want, what string) {
	out, err := w.runtime.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String(name), Body: []byte(body), ContentType: aws.String("text/plain"),
	})
	if !c.call("InvokeEndpointWithResponseStream "+what, err) {
		return
	}
	c.present("InvokeEndpointWithResponseStream", map[string]any{"ContentType": out.ContentType})
	stream := out.GetStream()
	defer stream.Close()
	var got []byte
	parts := 0
	for event := range stream.Events() {
		switch v := event.(type) {
		case *rttypes.ResponseStreamMemberPayloadPart:
			got = append(got, v.Value.Bytes...)
			parts++
		default:
			c.fail("InvokeEndpointWithResponseStream %s: unexpected event %T", what, event)
		}
	}
	if !c.call("InvokeEndpointWithResponseStream "+what+" stream", stream.Err()) {
		return
	}
	if parts == 0 {
		c.fail("InvokeEndpointWithResponseStream %s: no PayloadPart", what)
	}
	c.equal("InvokeEndpointWithResponseStream "+what+" body", string(got), want)
}

// ---- STS ----

func (w *world) stsScenario(ctx context.Context, c *checker) {
	out, err := w.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if !c.call("GetCallerIdentity", err) {
		return
	}
	c.present("GetCallerIdentity", map[string]any{"Account": out.Account, "Arn": out.Arn, "UserId": out.UserId})
	c.equal("GetCallerIdentity Account", aws.ToString(out.Account), w.env.account)
	c.equal("GetCallerIdentity Arn", aws.ToString(out.Arn), fmt.Sprintf("arn:aws:iam::%s:user/%s", w.env.account, w.env.accessKey))
}

func (w *world) stsFaults(ctx context.Context, c *checker) {
	w.fault(c, "deny", map[string]any{"operations": []string{"GetCallerIdentity"}})
	_, err := w.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	c.call("GetCallerIdentity under a deny (it needs no permission)", err)
	w.fault(c, "throttle", map[string]any{"every": 1, "operations": []string{"GetCallerIdentity"}, "limit": 1})
	_, err = w.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	c.expectErr("GetCallerIdentity throttled", err, errWant{code: "Throttling", status: 400})
	w.fault(c, "internal_error", map[string]any{"operations": []string{"GetCallerIdentity"}})
	_, err = w.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	c.expectErr("GetCallerIdentity internal error", err, errWant{code: "InternalFailure", status: 500})
}

// ---- S3 ----

func (w *world) s3Scenario(ctx context.Context, c *checker) {
	artifact, err := w.artifact()
	if err != nil {
		c.fail("reading the artifact: %v", err)
		return
	}
	_, err = w.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	c.call("CreateBucket", err)
	hb, err := w.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if c.call("HeadBucket", err) {
		// The operator learns a bucket's region from HeadBucket.
		c.equal("HeadBucket BucketRegion", aws.ToString(hb.BucketRegion), w.env.region)
	}
	for _, k := range []string{key, "tmp/a", "tmp/b", "tmp/c"} {
		put, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(artifact)})
		if c.call("PutObject "+k, err) {
			c.present("PutObject", map[string]any{"ETag": put.ETag})
		}
	}
	head, err := w.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if c.call("HeadObject", err) {
		c.present("HeadObject", map[string]any{"ETag": head.ETag, "LastModified": head.LastModified, "ContentLength": int(aws.ToInt64(head.ContentLength))})
	}
	get, err := w.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if c.call("GetObject", err) {
		data, err := io.ReadAll(get.Body)
		get.Body.Close()
		c.call("GetObject body", err)
		c.equal("GetObject round trip", bytes.Equal(data, artifact), true)
	}
	pages, keys := 0, []string{}
	paginator := s3.NewListObjectsV2Paginator(w.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1)})
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx)
		if !c.call("ListObjectsV2 page", err) {
			break
		}
		pages++
		for _, o := range page.Contents {
			c.present("ListObjectsV2 object", map[string]any{"Key": o.Key, "ETag": o.ETag, "LastModified": o.LastModified})
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	c.equal("ListObjectsV2 pages", pages, 4)
	c.equal("ListObjectsV2 keys", keys, []string{key, "tmp/a", "tmp/b", "tmp/c"})
	// The operator's garbage collection: a quiet batch delete, and a verbose one.
	del := func(quiet bool, keys ...string) *s3.DeleteObjectsOutput {
		objects := []s3types.ObjectIdentifier{}
		for _, k := range keys {
			objects = append(objects, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		out, err := w.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: objects, Quiet: aws.Bool(quiet)}})
		if !c.call(fmt.Sprintf("DeleteObjects quiet=%v", quiet), err) {
			return nil
		}
		return out
	}
	if out := del(true, "tmp/b"); out != nil {
		c.equal("DeleteObjects quiet lists nothing deleted", len(out.Deleted)+len(out.Errors), 0)
	}
	if out := del(false, "tmp/c"); out != nil && len(out.Deleted) == 1 {
		c.equal("DeleteObjects Deleted[].Key", aws.ToString(out.Deleted[0].Key), "tmp/c")
	} else {
		c.fail("DeleteObjects: want one Deleted entry")
	}
	_, err = w.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("tmp/a")})
	c.call("DeleteObject", err)
	_, err = w.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tmp/a")})
	c.expectErr("HeadObject deleted", err, errWant{code: "NotFound", status: 404, noBody: true, typed: is[*s3types.NotFound]})
	_, err = w.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("tmp/a")})
	c.expectErr("GetObject deleted", err, errWant{code: "NoSuchKey", status: 404, typed: is[*s3types.NoSuchKey]})
}

func (w *world) s3Faults(ctx context.Context, c *checker) {
	w.fault(c, "deny", map[string]any{"operations": []string{"PutObject"}})
	_, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("denied"), Body: strings.NewReader("x")})
	c.expectErr("PutObject denied", err, errWant{code: "AccessDenied", status: 403, messagePrefix: "Access Denied"})
	w.fault(c, "internal_error", map[string]any{"operations": []string{"GetObject", "HeadObject"}})
	_, err = w.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	c.expectErr("GetObject internal error", err, errWant{code: "InternalError", status: 500})
	_, err = w.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	c.expectErr("HeadObject internal error", err, errWant{code: "InternalError", status: 500, noBody: true})
	w.fault(c, "throttle", map[string]any{"every": 1, "operations": []string{"ListObjectsV2"}, "limit": 1})
	_, err = w.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	c.expectErr("ListObjectsV2 throttled", err, errWant{code: "SlowDown", status: 503})
}

// ---- SageMaker ----

func (w *world) createModel(ctx context.Context, c *checker, name, prefix string) {
	out, err := w.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName: aws.String(name),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image: aws.String(image), ModelDataUrl: aws.String("s3://" + bucket + "/" + key),
			Environment: map[string]string{"ECHO_PREFIX": prefix},
		},
		ExecutionRoleArn: aws.String(role),
		Tags:             ownerTags,
	})
	if c.call("CreateModel "+name, err) {
		c.equal("CreateModel ModelArn", aws.ToString(out.ModelArn), w.arn("model", name))
	}
}

func (w *world) createConfig(ctx context.Context, c *checker, name, model string, count int32) {
	out, err := w.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("AllTraffic"), ModelName: aws.String(model),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlG5Xlarge, InitialInstanceCount: aws.Int32(count),
		}},
		Tags: ownerTags,
	})
	if c.call("CreateEndpointConfig "+name, err) {
		c.equal("CreateEndpointConfig EndpointConfigArn", aws.ToString(out.EndpointConfigArn), w.arn("endpoint-config", name))
	}
}

func (w *world) lifecycle(ctx context.Context, c *checker) {
	w.createModel(ctx, c, "echo", "v1:")
	w.createModel(ctx, c, "echo-2", "v2:")
	model, err := w.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("echo")})
	if c.call("DescribeModel", err) {
		c.present("DescribeModel", map[string]any{
			"ModelName": model.ModelName, "ModelArn": model.ModelArn, "CreationTime": model.CreationTime,
			"EnableNetworkIsolation": model.EnableNetworkIsolation, "ExecutionRoleArn": model.ExecutionRoleArn,
			"PrimaryContainer": model.PrimaryContainer,
		})
	}
	names := []string{}
	models := sagemaker.NewListModelsPaginator(w.sm, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyAscending})
	for pages := 0; models.HasMorePages(); pages++ {
		page, err := models.NextPage(ctx)
		if !c.call("ListModels page", err) || pages > 5 {
			break
		}
		for _, m := range page.Models {
			c.present("ModelSummary", map[string]any{"ModelName": m.ModelName, "ModelArn": m.ModelArn, "CreationTime": m.CreationTime})
			names = append(names, aws.ToString(m.ModelName))
		}
	}
	c.equal("ListModels across pages", names, []string{"echo", "echo-2"})

	w.createConfig(ctx, c, "c-1", "echo", 1)
	w.createConfig(ctx, c, "c-2", "echo-2", 2)
	cfg, err := w.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("c-1")})
	if c.call("DescribeEndpointConfig", err) {
		c.present("DescribeEndpointConfig", map[string]any{
			"EndpointConfigName": cfg.EndpointConfigName, "EndpointConfigArn": cfg.EndpointConfigArn,
			"CreationTime": cfg.CreationTime, "EnableNetworkIsolation": cfg.EnableNetworkIsolation,
			"ProductionVariants": len(cfg.ProductionVariants),
		})
		for _, v := range cfg.ProductionVariants {
			c.present("DescribeEndpointConfig variant", map[string]any{
				"VariantName": v.VariantName, "ModelName": v.ModelName, "InstanceType": string(v.InstanceType),
				"InitialInstanceCount": v.InitialInstanceCount, "InitialVariantWeight": v.InitialVariantWeight,
			})
		}
	}
	configs := sagemaker.NewListEndpointConfigsPaginator(w.sm, &sagemaker.ListEndpointConfigsInput{MaxResults: aws.Int32(1)})
	count := 0
	for configs.HasMorePages() && count < 5 {
		page, err := configs.NextPage(ctx)
		if !c.call("ListEndpointConfigs page", err) {
			break
		}
		for _, s := range page.EndpointConfigs {
			c.present("EndpointConfigSummary", map[string]any{"EndpointConfigName": s.EndpointConfigName, "EndpointConfigArn": s.EndpointConfigArn, "CreationTime": s.CreationTime})
			count++
		}
	}
	c.equal("ListEndpointConfigs across pages", count, 2)

	w.fault(c, "set", map[string]any{"create_delay": 0.3, "update_delay": 0.6, "delete_delay": 0.3, "rollback_delay": 0.3})
	for _, name := range []string{"ep", "ep-2"} {
		out, err := w.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String("c-1"), Tags: ownerTags})
		if c.call("CreateEndpoint "+name, err) {
			c.equal("CreateEndpoint EndpointArn", aws.ToString(out.EndpointArn), w.arn("endpoint", name))
		}
	}
	if d := w.describe(ctx, c, "ep", "while creating"); d != nil {
		c.equal("status after CreateEndpoint", d.EndpointStatus, smtypes.EndpointStatusCreating)
	}
	for _, name := range []string{"ep", "ep-2"} {
		c.call("EndpointInService waiter "+name, w.waitInService(ctx, c, name))
	}
	w.describe(ctx, c, "ep", "in service")
	w.invoke(ctx, c, "ep", "hello", "v1:text/plain|hello", "on c-1")
	w.invokeStream(ctx, c, "ep", "hello", "v1:text/plain|hello", "on c-1")

	_, err = w.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("ep"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(3)}},
	})
	c.call("UpdateEndpointWeightsAndCapacities", err)
	c.call("EndpointInService waiter after scaling", w.waitInService(ctx, c, "ep"))

	_, err = w.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName: aws.String("ep"), EndpointConfigName: aws.String("c-2"), RetainAllVariantProperties: aws.Bool(true),
	})
	c.call("UpdateEndpoint RetainAllVariantProperties", err)
	if d := w.describe(ctx, c, "ep", "while updating"); d != nil {
		c.equal("status while updating", d.EndpointStatus, smtypes.EndpointStatusUpdating)
		c.equal("config while updating (the old fleet serves)", aws.ToString(d.EndpointConfigName), "c-1")
	}
	// Blue/green: the old fleet answers until the new one is in service.
	w.invoke(ctx, c, "ep", "hello", "v1:text/plain|hello", "during the update")
	c.call("EndpointInService waiter after the update", w.waitInService(ctx, c, "ep"))
	if d := w.describe(ctx, c, "ep", "after the update"); d != nil && len(d.ProductionVariants) > 0 {
		c.equal("config after the update", aws.ToString(d.EndpointConfigName), "c-2")
		c.equal("retained DesiredInstanceCount", aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount), 3)
		c.equal("CurrentInstanceCount", aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount), 3)
	}
	w.invoke(ctx, c, "ep", "hello", "v2:text/plain|hello", "on c-2")

	listed := 0
	endpoints := sagemaker.NewListEndpointsPaginator(w.sm, &sagemaker.ListEndpointsInput{MaxResults: aws.Int32(1), StatusEquals: smtypes.EndpointStatusInService})
	for endpoints.HasMorePages() && listed < 5 {
		page, err := endpoints.NextPage(ctx)
		if !c.call("ListEndpoints page", err) {
			break
		}
		for _, e := range page.Endpoints {
			c.present("EndpointSummary", map[string]any{
				"EndpointName": e.EndpointName, "EndpointArn": e.EndpointArn, "CreationTime": e.CreationTime,
				"LastModifiedTime": e.LastModifiedTime, "EndpointStatus": string(e.EndpointStatus),
			})
			listed++
		}
	}
	c.equal("ListEndpoints across pages", listed, 2)

	arn := w.arn("endpoint", "ep")
	_, err = w.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	c.call("AddTags", err)
	w.expectTags(ctx, c, arn, []string{owner + "=" + uid, "team=a"})
	_, err = w.sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: aws.String(arn), TagKeys: []string{"team"}})
	c.call("DeleteTags", err)
	w.expectTags(ctx, c, arn, []string{owner + "=" + uid})

	_, err = w.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ep-2")})
	c.call("DeleteEndpoint ep-2", err)
	if d := w.describe(ctx, c, "ep-2", "while deleting"); d != nil {
		c.equal("status after DeleteEndpoint", d.EndpointStatus, smtypes.EndpointStatusDeleting)
	}
	deleted := sagemaker.NewEndpointDeletedWaiter(w.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	c.call("EndpointDeleted waiter", deleted.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ep-2")}, 30*time.Second))
}

func (w *world) expectTags(ctx context.Context, c *checker, arn string, want []string) {
	out, err := w.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)})
	if !c.call("ListTags", err) {
		return
	}
	got := []string{}
	for _, t := range out.Tags {
		got = append(got, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	sort.Strings(got)
	c.equal("ListTags", got, want)
}

func (w *world) sagemakerErrors(ctx context.Context, c *checker) {
	notFound := func(kind, name string) errWant {
		return errWant{code: "ValidationException", status: 400, messagePrefix: fmt.Sprintf("Could not find %s \"%s\"", kind, w.arn(map[string]string{"model": "model", "endpoint configuration": "endpoint-config", "endpoint": "endpoint"}[kind], name))}
	}
	_, err := w.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("nope")})
	c.expectErr("DescribeEndpoint missing", err, notFound("endpoint", "nope"))
	_, err = w.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("nope")})
	c.expectErr("DescribeEndpointConfig missing", err, notFound("endpoint configuration", "nope"))
	_, err = w.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("nope")})
	c.expectErr("DescribeModel missing", err, notFound("model", "nope"))
	_, err = w.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("echo"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(image)}})
	c.expectErr("CreateModel existing", err, errWant{code: "ValidationException", status: 400, messagePrefix: "Cannot create already existing model"})
	_, err = w.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("bad_name"), EndpointConfigName: aws.String("c-1")})
	c.expectErr("CreateEndpoint invalid name", err, errWant{code: "ValidationException", status: 400, messagePrefix: "1 validation error detected: Value 'bad_name' at 'endpointName'"})
	_, err = w.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(w.arn("endpoint", "nope"))})
	c.expectErr("ListTags missing", err, errWant{code: "ValidationException", status: 400})

	w.fault(c, "set", map[string]any{"update_delay": 0.5})
	_, err = w.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("c-1")})
	c.call("UpdateEndpoint back to c-1", err)
	inProgress := errWant{code: "ValidationException", status: 400, messagePrefix: fmt.Sprintf("Cannot update in-progress endpoint \"%s\"", w.arn("endpoint", "ep"))}
	_, err = w.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ep")})
	c.expectErr("DeleteEndpoint while updating", err, inProgress)
	_, err = w.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("c-2")})
	c.expectErr("UpdateEndpoint while updating", err, inProgress)
	c.call("EndpointInService waiter", w.waitInService(ctx, c, "ep"))
}

func (w *world) sagemakerFaults(ctx context.Context, c *checker) {
	w.fault(c, "throttle", map[string]any{"every": 1, "operations": []string{"ListModels"}, "limit": 1})
	_, err := w.sm.ListModels(ctx, &sagemaker.ListModelsInput{})
	c.expectErr("ListModels throttled", err, errWant{code: "ThrottlingException", status: 400, messagePrefix: "Rate exceeded"})
	w.fault(c, "deny", map[string]any{"operations": []string{"CreateModel"}})
	_, err = w.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("denied"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(image)}})
	c.expectErr("CreateModel denied", err, errWant{code: "AccessDeniedException", status: 400, messagePrefix: "User: arn:aws:sts::" + w.env.account})
	w.fault(c, "internal_error", map[string]any{"operations": []string{"DescribeEndpoint"}})
	_, err = w.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ep")})
	c.expectErr("DescribeEndpoint internal error", err, errWant{code: "InternalFailure", status: 500})
	w.clearFaults(c)
	w.fault(c, "quota", map[string]any{"instance_type": "ml.g5.xlarge", "instances": 2})
	_, err = w.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("over-quota"), EndpointConfigName: aws.String("c-2")})
	c.expectErr("CreateEndpoint over quota", err, errWant{code: "ResourceLimitExceeded", status: 400, messagePrefix: "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 2 Instances, with current utilization of 1 Instances and a request delta of 2 Instances.", typed: is[*smtypes.ResourceLimitExceeded]})
}

func (w *world) runtimeErrors(ctx context.Context, c *checker) {
	_, err := w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("nope"), Body: []byte("x")})
	c.expectErr("InvokeEndpoint missing endpoint", err, errWant{code: "ValidationError", status: 400, messagePrefix: fmt.Sprintf("Endpoint nope of account %s not found.", w.env.account), typed: is[*rttypes.ValidationError]})
	_, err = w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("fail"), ContentType: aws.String("text/plain")})
	c.expectErr("InvokeEndpoint model error", err, errWant{code: "ModelError", status: 424, messagePrefix: "Received client error (400) from primary with message", typed: is[*rttypes.ModelError]})
	var modelErr *rttypes.ModelError
	if errors.As(err, &modelErr) {
		c.present("ModelError", map[string]any{"OriginalStatusCode": modelErr.OriginalStatusCode, "OriginalMessage": modelErr.OriginalMessage, "LogStreamArn": modelErr.LogStreamArn})
	}
	w.fault(c, "throttle", map[string]any{"every": 1, "operations": []string{"InvokeEndpoint"}, "limit": 1})
	_, err = w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("x")})
	c.expectErr("InvokeEndpoint throttled", err, errWant{code: "ThrottlingException", status: 400})
	w.fault(c, "deny", map[string]any{"operations": []string{"InvokeEndpoint"}})
	_, err = w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("x")})
	c.expectErr("InvokeEndpoint denied", err, errWant{code: "AccessDeniedException", status: 400, messagePrefix: "User: arn:aws:sts::"})
	w.clearFaults(c)
	w.fault(c, "internal_error", map[string]any{"operations": []string{"InvokeEndpoint"}})
	_, err = w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("x")})
	c.expectErr("InvokeEndpoint internal error", err, errWant{code: "InternalFailure", status: 500, typed: is[*rttypes.InternalFailure]})
}

func (w *world) deploymentFaults(ctx context.Context, c *checker) {
	w.fault(c, "set", map[string]any{"create_delay": 0.2, "update_delay": 0.2, "delete_delay": 0.2, "rollback_delay": 0.2})
	// A container that never passes /ping: the update rolls back to the old config.
	w.createConfig(ctx, c, "c-3", "echo-2", 1)
	w.fault(c, "fail_model_start", map[string]any{"model_name": "echo-2"})
	_, err := w.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("c-3")})
	c.call("UpdateEndpoint to a failing model", err)
	c.call("EndpointInService waiter after the rollback", w.waitInService(ctx, c, "ep"))
	if d := w.describe(ctx, c, "ep", "after the rollback"); d != nil {
		c.equal("config after the rollback", aws.ToString(d.EndpointConfigName), "c-1")
		if !strings.HasPrefix(aws.ToString(d.FailureReason), "The primary container for production variant AllTraffic did not pass the ping health check") {
			c.fail("FailureReason after the rollback: %q", aws.ToString(d.FailureReason))
		}
	}
	// Capacity: the create fails, the SDK's waiter says so, only DeleteEndpoint is accepted.
	w.fault(c, "capacity_error", map[string]any{"instance_type": "ml.g5.*"})
	_, err = w.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("no-capacity"), EndpointConfigName: aws.String("c-1")})
	c.call("CreateEndpoint without capacity", err)
	if err := w.waitInService(ctx, c, "no-capacity"); err == nil {
		c.fail("EndpointInService waiter: succeeded on an endpoint without capacity")
	} else {
		c.ok("EndpointInService waiter fails on Failed")
	}
	if d := w.describe(ctx, c, "no-capacity", "without capacity"); d != nil && !strings.HasPrefix(aws.ToString(d.FailureReason), "CapacityError") {
		c.fail("FailureReason without capacity: %q", aws.ToString(d.FailureReason))
	}
	_, err = w.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("no-capacity"), EndpointConfigName: aws.String("c-1")})
	c.expectErr("UpdateEndpoint on Failed", err, errWant{code: "ValidationException", status: 400, messagePrefix: "Cannot update failed endpoint"})
	// An endpoint that fails while serving stops answering.
	w.admin(c, "POST", "/endpoints/ep/fail", map[string]any{"reason": "instance lost"})
	if d := w.describe(ctx, c, "ep", "after failing"); d != nil {
		c.equal("FailureReason after failing", aws.ToString(d.FailureReason), "instance lost")
	}
	_, err = w.runtime.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("x")})
	c.expectErr("InvokeEndpoint on Failed", err, errWant{code: "ValidationError", status: 400, typed: is[*rttypes.ValidationError]})
	w.teardown(ctx, c)
}

func (w *world) teardown(ctx context.Context, c *checker) {
	deleted := sagemaker.NewEndpointDeletedWaiter(w.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	for _, name := range []string{"ep", "no-capacity"} {
		_, err := w.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)})
		c.call("DeleteEndpoint "+name, err)
		c.call("EndpointDeleted waiter "+name, deleted.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 30*time.Second))
	}
	for _, name := range []string{"c-1", "c-2", "c-3"} {
		_, err := w.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String(name)})
		c.call("DeleteEndpointConfig "+name, err)
	}
	for _, name := range []string{"echo", "echo-2"} {
		_, err := w.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String(name)})
		c.call("DeleteModel "+name, err)
	}
	out, err := w.tagging.GetResources(ctx, &resourcegroupstaggingapi.GetResourcesInput{TagFilters: []rgtypes.TagFilter{{Key: aws.String(owner)}}})
	if c.call("GetResources after deleting everything", err) {
		c.equal("deleted resources disappear", len(out.ResourceTagMappingList), 0)
	}
}

// ---- Resource Groups Tagging API ----

func (w *world) taggingScenario(ctx context.Context, c *checker) {
	input := &resourcegroupstaggingapi.GetResourcesInput{
		TagFilters:          []rgtypes.TagFilter{{Key: aws.String(owner), Values: []string{uid}}},
		ResourceTypeFilters: []string{"sagemaker:endpoint", "sagemaker:endpoint-config", "sagemaker:model"},
		ResourcesPerPage:    aws.Int32(2),
	}
	arns, pages := []string{}, 0
	paginator := resourcegroupstaggingapi.NewGetResourcesPaginator(w.tagging, input)
	for paginator.HasMorePages() && pages < 10 {
		page, err := paginator.NextPage(ctx)
		if !c.call("GetResources page", err) {
			break
		}
		pages++
		for _, m := range page.ResourceTagMappingList {
			c.present("ResourceTagMapping", map[string]any{"ResourceARN": m.ResourceARN, "Tags": len(m.Tags)})
			arns = append(arns, aws.ToString(m.ResourceARN))
		}
	}
	want := []string{
		w.arn("endpoint", "ep"), w.arn("endpoint-config", "c-1"), w.arn("endpoint-config", "c-2"),
		w.arn("model", "echo"), w.arn("model", "echo-2"),
	}
	sort.Strings(arns)
	sort.Strings(want)
	c.equal("GetResources owned", arns, want)
	c.equal("GetResources pages", pages, 3)

	_, err := w.tagging.GetResources(ctx, &resourcegroupstaggingapi.GetResourcesInput{ResourcesPerPage: aws.Int32(0)})
	c.expectErr("GetResources ResourcesPerPage 0", err, errWant{code: "InvalidParameterException", status: 400, typed: is[*rgtypes.InvalidParameterException]})
	w.fault(c, "throttle", map[string]any{"every": 1, "operations": []string{"GetResources"}, "limit": 1})
	_, err = w.tagging.GetResources(ctx, input)
	c.expectErr("GetResources throttled", err, errWant{code: "ThrottledException", status: 400, typed: is[*rgtypes.ThrottledException]})
	w.fault(c, "deny", map[string]any{"operations": []string{"GetResources"}})
	_, err = w.tagging.GetResources(ctx, input)
	c.expectErr("GetResources denied", err, errWant{code: "AccessDeniedException", status: 400, messagePrefix: "User: arn:aws:sts::"})
	w.clearFaults(c)
	w.fault(c, "internal_error", map[string]any{"operations": []string{"GetResources"}})
	_, err = w.tagging.GetResources(ctx, input)
	c.expectErr("GetResources internal error", err, errWant{code: "InternalServiceException", status: 500, typed: is[*rgtypes.InternalServiceException]})
}
