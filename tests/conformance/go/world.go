package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// world holds one stock client per service, all pointed at the emulator.
type world struct {
	env     env
	sm      *sagemaker.Client
	runtime *sagemakerruntime.Client
	s3      *s3.Client
	sts     *sts.Client
	tagging *resourcegroupstaggingapi.Client
	// Application Auto Scaling, from AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING.
	autoscaling *applicationautoscaling.Client
	http        *http.Client
}

func newWorld(e env) *world {
	cfg := e.awsConfig()
	endpoint := aws.String(e.endpoint)
	return &world{
		env:     e,
		sm:      sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = endpoint }),
		runtime: sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = endpoint }),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(e.s3)
			o.UsePathStyle = true
		}),
		sts:     sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint }),
		tagging: resourcegroupstaggingapi.NewFromConfig(cfg, func(o *resourcegroupstaggingapi.Options) { o.BaseEndpoint = endpoint }),
		autoscaling: applicationautoscaling.NewFromConfig(cfg, func(o *applicationautoscaling.Options) {
			o.BaseEndpoint = aws.String(e.autoscaling)
		}),
		http: &http.Client{Timeout: 30 * time.Second},
	}
}

// admin calls the emulator's admin API (fault injection); failures there fail the run.
func (w *world) admin(c *checker, method, path string, body any) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			c.fail("admin %s %s: %v", method, path, err)
			return
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, w.env.admin+path, reader)
	if err != nil {
		c.fail("admin %s %s: %v", method, path, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		c.fail("admin %s %s: %v", method, path, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(resp.Body)
		c.fail("admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, text)
	}
}

func (w *world) fault(c *checker, name string, args any) {
	w.admin(c, http.MethodPost, "/faults/"+name, args)
}

func (w *world) clearFaults(c *checker) { w.admin(c, http.MethodDelete, "/faults", nil) }

func (w *world) reset(c *checker) { w.admin(c, http.MethodPost, "/reset", map[string]any{}) }

func (w *world) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", w.env.region, w.env.account, kind, name)
}

func (w *world) artifact() ([]byte, error) { return os.ReadFile(w.env.artifact) }
