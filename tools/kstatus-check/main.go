// Command kstatus-check computes the kstatus of Kubernetes objects with the real library that
// Flux, `kubectl wait`-style tools and cli-utils' appliers use
// (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute), so that tests can check what those tools
// see for a Rollout in each phase.
//
// Usage:
//
//	kstatus-check [FILE...]   # objects from the files, or from standard input when none is given
//
// Input: JSON or YAML documents, several per file (YAML `---` separators or JSON objects one
// after another); a `kind: List` (as `kubectl get -o json` prints) is expanded into its items.
// Output: one JSON line per object, in input order:
//
//	{"kind":"Rollout","namespace":"shop","name":"checkout","status":"InProgress","message":"...","conditions":[...]}
//
// where status is Current, InProgress, Failed, Terminating or Unknown, and conditions are the
// kstatus conditions (Reconciling/Stalled) the library derived. Exit status 1 when an input
// cannot be read or parsed, or the library returns an error; 2 on a usage error.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// line is one output line: the object's identity and what kstatus computed for it.
type line struct {
	Kind       string             `json:"kind"`
	Namespace  string             `json:"namespace,omitempty"`
	Name       string             `json:"name"`
	Status     status.Status      `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions"`
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
		fmt.Fprintln(os.Stderr, "usage: kstatus-check [FILE...]  (JSON or YAML objects; standard input when no FILE)")
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var err error
	if len(os.Args) == 1 {
		err = check("standard input", os.Stdin, out)
	} else {
		for _, path := range os.Args[1:] {
			if err = checkFile(path, out); err != nil {
				break
			}
		}
	}
	if err != nil {
		out.Flush()
		fmt.Fprintf(os.Stderr, "kstatus-check: %v\n", err)
		os.Exit(1)
	}
}

func checkFile(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return check(path, f, out)
}

// check computes and prints the status of every object in the stream r, named source in errors.
func check(source string, r io.Reader, out io.Writer) error {
	decoder := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
			continue // an empty YAML document
		}
		// Integers must decode as int64, as the API machinery decodes them: kstatus reads
		// metadata.generation and status.observedGeneration as int64 and rejects a float64.
		var object map[string]interface{}
		if err := utiljson.Unmarshal(raw, &object); err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		u := &unstructured.Unstructured{Object: object}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return fmt.Errorf("%s: document %d: %w", source, n, err)
			}
			for i := range list.Items {
				if err := compute(&list.Items[i], out); err != nil {
					return fmt.Errorf("%s: document %d: item %d: %w", source, n, i, err)
				}
			}
			continue
		}
		if err := compute(u, out); err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
	}
}

func compute(u *unstructured.Unstructured, out io.Writer) error {
	result, err := status.Compute(u)
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	conditions := result.Conditions
	if conditions == nil {
		conditions = []status.Condition{}
	}
	encoded, err := json.Marshal(line{
		Kind:       u.GetKind(),
		Namespace:  u.GetNamespace(),
		Name:       u.GetName(),
		Status:     result.Status,
		Message:    result.Message,
		Conditions: conditions,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", encoded)
	return err
}
