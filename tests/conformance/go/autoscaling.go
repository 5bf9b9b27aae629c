package main

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// ---- Application Auto Scaling (on its own endpoint, deleted at the end) ----

const (
	scaledEndpoint = "scaled"
	scaledResource = "endpoint/" + scaledEndpoint + "/variant/AllTraffic"
)

func scaledKey() (aastypes.ServiceNamespace, *string, aastypes.ScalableDimension) {
	return aastypes.ServiceNamespaceSagemaker, aws.String(scaledResource), aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount
}

func (w *world) autoscalingScenario(ctx context.Context, c *checker) {
	ns, rid, dim := scaledKey()
	w.createConfig(ctx, c, "c-scaled", "echo", 1)
	_, err := w.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(scaledEndpoint), EndpointConfigName: aws.String("c-scaled")})
	if !c.call("CreateEndpoint "+scaledEndpoint, err) || !c.call("EndpointInService waiter "+scaledEndpoint, w.waitInService(ctx, c, scaledEndpoint)) {
		return
	}

	reg, err := w.autoscaling.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(3),
	})
	if c.call("RegisterScalableTarget", err) {
		c.present("RegisterScalableTarget", map[string]any{"ScalableTargetARN": reg.ScalableTargetARN})
	}
	put, err := w.autoscaling.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{
		PolicyName: aws.String("invocations"), ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim,
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(100),
			PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
				PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance,
			},
			ScaleOutCooldown: aws.Int32(0),
		},
	})
	if c.call("PutScalingPolicy", err) {
		c.present("PutScalingPolicy", map[string]any{"PolicyARN": put.PolicyARN})
		c.equal("PutScalingPolicy alarms", len(put.Alarms), 2)
	}
	_, err = w.autoscaling.PutScheduledAction(ctx, &aas.PutScheduledActionInput{
		ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, ScheduledActionName: aws.String("mornings"),
		Schedule:             aws.String("cron(0 8 ? * MON-FRI *)"),
		ScalableTargetAction: &aastypes.ScalableTargetAction{MinCapacity: aws.Int32(2), MaxCapacity: aws.Int32(3)},
	})
	c.call("PutScheduledAction", err)

	// Simulated load: 250 invocations/minute at 100 per instance -> 3 instances (the max).
	w.admin(c, http.MethodPost, "/autoscaling/invocation_rate", map[string]any{"endpoint": scaledEndpoint, "variant": "AllTraffic", "per_minute": 250})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := w.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(scaledEndpoint)})
		if err == nil && out.EndpointStatus == "InService" && len(out.ProductionVariants) == 1 && aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := w.describe(ctx, c, scaledEndpoint, "after scaling out"); out != nil && len(out.ProductionVariants) == 1 {
		c.equal("scaled-out CurrentInstanceCount", aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount), 3)
	}

	targets := aas.NewDescribeScalableTargetsPaginator(w.autoscaling, &aas.DescribeScalableTargetsInput{ServiceNamespace: ns, MaxResults: aws.Int32(1)})
	for pages := 0; targets.HasMorePages() && pages < 5; pages++ {
		page, err := targets.NextPage(ctx)
		if !c.call("DescribeScalableTargets page", err) {
			break
		}
		for _, t := range page.ScalableTargets {
			c.present("ScalableTarget", map[string]any{
				"ResourceId": t.ResourceId, "MinCapacity": t.MinCapacity, "MaxCapacity": t.MaxCapacity,
				"RoleARN": t.RoleARN, "CreationTime": t.CreationTime, "ServiceNamespace": string(t.ServiceNamespace),
				"ScalableDimension": string(t.ScalableDimension),
			})
		}
	}
	policies, err := w.autoscaling.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: ns, ResourceId: rid})
	if c.call("DescribeScalingPolicies", err) {
		c.equal("DescribeScalingPolicies count", len(policies.ScalingPolicies), 1)
		for _, p := range policies.ScalingPolicies {
			c.present("ScalingPolicy", map[string]any{
				"PolicyARN": p.PolicyARN, "PolicyName": p.PolicyName, "ResourceId": p.ResourceId,
				"PolicyType": string(p.PolicyType), "CreationTime": p.CreationTime,
			})
		}
	}
	actions, err := w.autoscaling.DescribeScheduledActions(ctx, &aas.DescribeScheduledActionsInput{ServiceNamespace: ns})
	if c.call("DescribeScheduledActions", err) {
		c.equal("DescribeScheduledActions count", len(actions.ScheduledActions), 1)
		for _, a := range actions.ScheduledActions {
			c.present("ScheduledAction", map[string]any{
				"ScheduledActionName": a.ScheduledActionName, "ScheduledActionARN": a.ScheduledActionARN,
				"Schedule": a.Schedule, "ResourceId": a.ResourceId, "CreationTime": a.CreationTime,
			})
		}
	}
	activities, err := w.autoscaling.DescribeScalingActivities(ctx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ns, ResourceId: rid})
	if c.call("DescribeScalingActivities", err) {
		c.equal("DescribeScalingActivities count", len(activities.ScalingActivities), 1)
		for _, a := range activities.ScalingActivities {
			c.present("ScalingActivity", map[string]any{
				"ActivityId": a.ActivityId, "Description": a.Description, "Cause": a.Cause,
				"StartTime": a.StartTime, "StatusCode": string(a.StatusCode),
			})
			c.equal("ScalingActivity status", a.StatusCode, aastypes.ScalingActivityStatusCodeSuccessful)
		}
	}

	w.autoscalingErrors(ctx, c)

	_, err = w.autoscaling.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{PolicyName: aws.String("invocations"), ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim})
	c.call("DeleteScalingPolicy", err)
	_, err = w.autoscaling.DeleteScheduledAction(ctx, &aas.DeleteScheduledActionInput{ScheduledActionName: aws.String("mornings"), ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim})
	c.call("DeleteScheduledAction", err)
	_, err = w.autoscaling.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim})
	c.call("DeregisterScalableTarget", err)

	// Deleting an endpoint deregisters its targets (the SageMaker guide says so): register again, delete.
	_, err = w.autoscaling.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(3),
	})
	c.call("RegisterScalableTarget again", err)
	_, err = w.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(scaledEndpoint)})
	c.call("DeleteEndpoint "+scaledEndpoint, err)
	deleted := sagemaker.NewEndpointDeletedWaiter(w.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	c.call("EndpointDeleted waiter "+scaledEndpoint, deleted.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(scaledEndpoint)}, 30*time.Second))
	left, err := w.autoscaling.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: ns})
	if c.call("DescribeScalableTargets after DeleteEndpoint", err) {
		c.equal("targets left after DeleteEndpoint", len(left.ScalableTargets), 0)
	}
	_, err = w.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("c-scaled")})
	c.call("DeleteEndpointConfig c-scaled", err)
}

func (w *world) autoscalingErrors(ctx context.Context, c *checker) {
	ns, rid, dim := scaledKey()
	_, err := w.autoscaling.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: ns, ResourceId: aws.String("endpoint/missing/variant/AllTraffic"), ScalableDimension: dim,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2),
	})
	c.expectErr("RegisterScalableTarget on a missing endpoint", err, errWant{code: "ValidationException", status: 400, typed: is[*aastypes.ValidationException]})
	_, err = w.autoscaling.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MinCapacity: aws.Int32(3), MaxCapacity: aws.Int32(2),
	})
	c.expectErr("RegisterScalableTarget min > max", err, errWant{code: "ValidationException", status: 400, typed: is[*aastypes.ValidationException]})
	_, err = w.autoscaling.PutScheduledAction(ctx, &aas.PutScheduledActionInput{
		ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, ScheduledActionName: aws.String("bad"),
		Schedule: aws.String("cron(0 8 * * *)"),
	})
	c.expectErr("PutScheduledAction five-field cron", err, errWant{code: "ValidationException", status: 400, typed: is[*aastypes.ValidationException]})
	_, err = w.autoscaling.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{PolicyName: aws.String("nope"), ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim})
	c.expectErr("DeleteScalingPolicy missing", err, errWant{code: "ObjectNotFoundException", status: 400, typed: is[*aastypes.ObjectNotFoundException]})

	describe := &aas.DescribeScalableTargetsInput{ServiceNamespace: ns}
	w.fault(c, "throttle", map[string]any{"every": 1, "operations": []string{"DescribeScalableTargets"}, "limit": 1})
	_, err = w.autoscaling.DescribeScalableTargets(ctx, describe)
	c.expectErr("DescribeScalableTargets throttled", err, errWant{code: "ThrottlingException", status: 400})
	w.fault(c, "deny", map[string]any{"operations": []string{"DescribeScalableTargets"}})
	_, err = w.autoscaling.DescribeScalableTargets(ctx, describe)
	c.expectErr("DescribeScalableTargets denied", err, errWant{code: "AccessDeniedException", status: 400, messagePrefix: "User: arn:aws:sts::"})
	w.clearFaults(c)
	w.fault(c, "internal_error", map[string]any{"operations": []string{"DescribeScalableTargets"}})
	_, err = w.autoscaling.DescribeScalableTargets(ctx, describe)
	c.expectErr("DescribeScalableTargets internal error", err, errWant{code: "InternalServiceException", status: 500, typed: is[*aastypes.InternalServiceException]})
	w.clearFaults(c)
}
