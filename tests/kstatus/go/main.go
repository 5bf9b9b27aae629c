// kstatus reads one Kubernetes object (JSON or YAML) on stdin and prints what
// sigs.k8s.io/cli-utils' kstatus computes for it, as JSON: {"status": ..., "message": ...}.
// The tests use it so that "kstatus says InProgress" is checked by kstatus itself.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		fail(err)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(data); err != nil { // numbers as int64, as the API machinery reads them
		fail(err)
	}
	result, err := status.Compute(object)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(map[string]string{"status": result.Status.String(), "message": result.Message})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
