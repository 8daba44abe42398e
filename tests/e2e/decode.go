package main

// yaml2json: the decoder kubectl, Helm and ArgoCD use (k8s.io/apimachinery's YAMLOrJSONDecoder over
// sigs.k8s.io/yaml, go-yaml's YAML 1.1 rules), for differential tests of regate's manifest reader.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func yamlToJSON(files []string) int {
	if len(files) == 0 {
		files = []string{"-"}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	status := 0
	for _, file := range files {
		var in io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				fmt.Fprintln(os.Stderr, "yaml2json:", err)
				return 2
			}
			defer f.Close()
			in = f
		}
		decoder := utilyaml.NewYAMLOrJSONDecoder(in, 4096)
		for {
			var doc json.RawMessage
			err := decoder.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// One line per failing document, so callers can line the outputs up.
				fmt.Fprintf(out, "{\"error\":%q}\n", err.Error())
				status = 1
				break
			}
			if len(doc) == 0 || string(doc) == "null" {
				continue
			}
			fmt.Fprintf(out, "%s\n", doc)
		}
	}
	return status
}
