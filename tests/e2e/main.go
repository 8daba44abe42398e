// Command testenv is regate's end-to-end control plane: a real etcd, kube-apiserver and
// kube-controller-manager from pinned Kubernetes modules, on 127.0.0.1 only, plus kubectl from the
// same release. It is a test harness; regate itself never links Go code.
//
// One binary, several programs (chosen by the first argument, or by the name it is called by):
//
//	testenv up --dir DIR                 start the control plane, print READY, run until SIGTERM
//	testenv kubectl ...                  kubectl v1.37 (also when invoked through a "kubectl" symlink)
//	testenv kube-apiserver ...           the API server (started by "up" as a child process)
//	testenv kube-controller-manager ...  the controller manager (started by "up" as a child process)
//	testenv yaml2json [FILE...]          each YAML document as kubectl decodes it, one JSON per line
//
// "up" keeps etcd in its own process and runs the API server and the controller manager as child
// processes of the same binary: each Kubernetes command installs its own signal handling, and a
// separate API server process can be stopped and started again while etcd keeps the cluster's data
// (SIGUSR1 stops it, SIGUSR2 starts it again on the same port), which the fault tests need.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	program := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if program != "kubectl" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: testenv up --dir DIR | kubectl ... | kube-apiserver ... | kube-controller-manager ...")
			os.Exit(2)
		}
		program, args = args[0], args[1:]
	}
	// The Kubernetes commands parse os.Args themselves (through cobra).
	os.Args = append([]string{program}, args...)

	switch program {
	case "up":
		os.Exit(up(args))
	case "kubectl":
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "yaml2json":
		os.Exit(yamlToJSON(args))
	case "kube-apiserver":
		os.Exit(cli.Run(apiserverapp.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(kcmapp.NewControllerManagerCommand()))
	default:
		fmt.Fprintf(os.Stderr, "testenv: unknown program %q\n", program)
		os.Exit(2)
	}
}
