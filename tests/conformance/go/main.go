// Command conformance drives the local emulator with a second AWS SDK (aws-sdk-go-v2) through
// the operator's whole SageMaker / sagemaker-runtime / S3 / STS / Tagging / Application Auto Scaling
// scenario and every
// fault the emulator can inject. It fails (exit 1) on any response the SDK cannot deserialize,
// any member AWS always returns that is missing, and any error whose code, message, status or
// request id AWS would not send.
//
// Environment (what `djl-operator-kit emulator` prints, plus two of its own):
//
//	AWS_ENDPOINT_URL_SAGEMAKER   SageMaker, sagemaker-runtime, Tagging and STS (one port)
//	AWS_ENDPOINT_URL_S3          moto's S3
//	AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING  Application Auto Scaling
//	AWS_DEFAULT_REGION           the emulator's region
//	DJL_EMULATOR_ADMIN_URL       fault injection
//	DJL_EMULATOR_ACCOUNT_ID      the account in every ARN
//	CONFORMANCE_ARTIFACT         path of a model.tar.gz whose handler echoes its input
//	CONFORMANCE_ACCESS_KEY       the access key id to sign with (the caller the emulator records)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
)

// env is the emulator the run talks to.
type env struct {
	endpoint, s3, autoscaling, admin, region, account, artifact, accessKey string
}

func readEnv() (env, error) {
	e := env{
		endpoint:    os.Getenv("AWS_ENDPOINT_URL_SAGEMAKER"),
		s3:          os.Getenv("AWS_ENDPOINT_URL_S3"),
		autoscaling: os.Getenv("AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING"),
		admin:       os.Getenv("DJL_EMULATOR_ADMIN_URL"),
		region:      os.Getenv("AWS_DEFAULT_REGION"),
		account:     os.Getenv("DJL_EMULATOR_ACCOUNT_ID"),
		artifact:    os.Getenv("CONFORMANCE_ARTIFACT"),
		accessKey:   os.Getenv("CONFORMANCE_ACCESS_KEY"),
	}
	if e.accessKey == "" {
		e.accessKey = "conformance"
	}
	for name, value := range map[string]string{
		"AWS_ENDPOINT_URL_SAGEMAKER": e.endpoint, "AWS_ENDPOINT_URL_S3": e.s3, "DJL_EMULATOR_ADMIN_URL": e.admin,
		"AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING": e.autoscaling,
		"AWS_DEFAULT_REGION":                        e.region, "DJL_EMULATOR_ACCOUNT_ID": e.account, "CONFORMANCE_ARTIFACT": e.artifact,
	} {
		if value == "" {
			return e, fmt.Errorf("%s is not set", name)
		}
	}
	return e, nil
}

func (e env) awsConfig() aws.Config {
	return aws.Config{
		Region:      e.region,
		Credentials: credentials.NewStaticCredentialsProvider(e.accessKey, "conformance-secret", ""),
		// Every error must reach the checks as the emulator sent it: no retries.
		Retryer: func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// checker collects failures; a run passes when it has none.
type checker struct {
	failures []string
	passed   int
	step     string
}

func (c *checker) section(name string) {
	c.step = name
	fmt.Printf("== %s\n", name)
}

func (c *checker) fail(format string, args ...any) {
	msg := fmt.Sprintf("[%s] ", c.step) + fmt.Sprintf(format, args...)
	c.failures = append(c.failures, msg)
	fmt.Println("FAIL", msg)
}

func (c *checker) ok(what string) {
	c.passed++
	fmt.Println("ok  ", what)
}

// call checks a call that must succeed: an error here (a deserialization error included) fails the run.
func (c *checker) call(what string, err error) bool {
	if err != nil {
		var de *smithy.DeserializationError
		if errors.As(err, &de) {
			c.fail("%s: the SDK could not deserialize the response: %v", what, err)
		} else {
			c.fail("%s: %v", what, err)
		}
		return false
	}
	c.ok(what)
	return true
}

// present fails when an always-returned member is missing (nil pointer, empty slice or string).
func (c *checker) present(what string, values map[string]any) {
	for name, v := range values {
		missing := false
		switch x := v.(type) {
		case nil:
			missing = true
		case *string:
			missing = x == nil || *x == ""
		case *bool:
			missing = x == nil
		case *int32:
			missing = x == nil
		case *float32:
			missing = x == nil
		case *time.Time:
			missing = x == nil || x.IsZero()
		case string:
			missing = x == ""
		case int:
			missing = x == 0
		}
		if missing {
			c.fail("%s: %s missing (AWS always returns it)", what, name)
		}
	}
}

func (c *checker) equal(what string, got, want any) {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		c.fail("%s: got %v, want %v", what, got, want)
		return
	}
	c.ok(what)
}

// expectErr checks an error response's whole shape: the code (and the typed error when the
// model declares one), the message, the HTTP status and the request id AWS always sends.
type errWant struct {
	code          string
	status        int
	messagePrefix string // "" = any non-empty message
	noBody        bool   // HEAD answers carry no body, so no code or message either
	typed         func(error) bool
}

func (c *checker) expectErr(what string, err error, want errWant) {
	if err == nil {
		c.fail("%s: succeeded, want %s", what, want.code)
		return
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		c.fail("%s: the SDK could not deserialize the error: %v", what, err)
		return
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		c.fail("%s: not an HTTP response error: %v", what, err)
		return
	}
	if re.HTTPStatusCode() != want.status {
		c.fail("%s: HTTP %d, want %d", what, re.HTTPStatusCode(), want.status)
	}
	if re.ServiceRequestID() == "" {
		c.fail("%s: no request id", what)
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		c.fail("%s: not an API error: %v", what, err)
		return
	}
	if !want.noBody {
		if api.ErrorCode() != want.code {
			c.fail("%s: code %q, want %q (%s)", what, api.ErrorCode(), want.code, api.ErrorMessage())
		}
		msg := api.ErrorMessage()
		if msg == "" || msg == api.ErrorCode() {
			c.fail("%s: %s without a message", what, api.ErrorCode())
		}
		if want.messagePrefix != "" && !strings.HasPrefix(msg, want.messagePrefix) {
			c.fail("%s: message %q, want it to start with %q", what, msg, want.messagePrefix)
		}
	}
	if want.typed != nil && !want.typed(err) {
		c.fail("%s: %T is not the modeled error type for %s", what, err, want.code)
	}
	c.ok(fmt.Sprintf("%s -> %s (HTTP %d)", what, want.code, want.status))
}

func main() {
	e, err := readEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := &checker{}
	w := newWorld(e)
	w.reset(c)
	scenarios := []struct {
		name string
		run  func(context.Context, *checker)
	}{
		{"sts", w.stsScenario},
		{"s3", w.s3Scenario},
		{"sagemaker lifecycle", w.lifecycle},
		{"tagging", w.taggingScenario},
		{"application auto scaling", w.autoscalingScenario},
		{"sagemaker errors", w.sagemakerErrors},
		{"sagemaker faults", w.sagemakerFaults},
		{"runtime errors", w.runtimeErrors},
		{"deployment faults", w.deploymentFaults},
		{"s3 faults", w.s3Faults},
		{"sts faults", w.stsFaults},
	}
	for _, s := range scenarios {
		c.section(s.name)
		w.clearFaults(c)
		s.run(ctx, c)
	}
	w.clearFaults(c)
	fmt.Printf("\n%d checks passed, %d failed\n", c.passed, len(c.failures))
	if len(c.failures) > 0 {
		for _, f := range c.failures {
			fmt.Println("FAIL", f)
		}
		os.Exit(1)
	}
}
