package main

// "testenv up": etcd in this process, kube-apiserver and kube-controller-manager as child processes,
// everything on 127.0.0.1. Protocol on stdout, one line per event, for the Rust tests to read:
//
//	READY {"kubeconfig":...,"server":...,"caFile":...,"dir":...}   the control plane serves requests
//	APISERVER STOPPED                                              after SIGUSR1
//	APISERVER READY                                                after SIGUSR2, once /readyz answers
//	STOPPED                                                        after SIGTERM/SIGINT, before exit 0
//
// Everything else (component logs) goes to files in --dir.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// controllers the e2e tests need: workloads that create Pods, namespace deletion, owner-reference
// garbage collection, the default ServiceAccount (Pods are refused without it), and the aggregation of
// the admin/edit/view ClusterRoles (tenants are bound to them).
const controllers = "deployment-controller,replicaset-controller,statefulset-controller,job-controller," +
	"cronjob-controller,namespace-controller,garbage-collector-controller,serviceaccount-controller," +
	"serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller"

type readyInfo struct {
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	CAFile     string `json:"caFile"`
	Dir        string `json:"dir"`
	Pid        int    `json:"pid"`
}

func up(args []string) int {
	flags := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := flags.String("dir", "", "state directory (certificates, etcd data, logs, kubeconfig); a temporary one if empty")
	startTimeout := flags.Duration("timeout", 180*time.Second, "how long the control plane may take to become ready")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "regate-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		*dir = d
	}
	env, err := start(*dir, *startTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if env != nil {
			env.stop()
		}
		return 1
	}
	info, _ := json.Marshal(readyInfo{
		Kubeconfig: env.kubeconfig, Server: env.serverURL(), CAFile: env.pki.CACert, Dir: env.dir, Pid: os.Getpid(),
	})
	fmt.Printf("READY %s\n", info)

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	go watchParent(signals)
	for {
		select {
		case sig := <-signals:
			switch sig {
			case syscall.SIGUSR1:
				env.apiserver.stop()
				fmt.Println("APISERVER STOPPED")
			case syscall.SIGUSR2:
				if err := env.startAPIServer(*startTimeout); err != nil {
					fmt.Fprintln(os.Stderr, "testenv: restarting the API server:", err)
					env.stop()
					return 1
				}
				fmt.Println("APISERVER READY")
			default:
				env.stop()
				fmt.Println("STOPPED")
				return 0
			}
		case err := <-env.etcd.Err():
			fmt.Fprintln(os.Stderr, "testenv: etcd failed:", err)
			env.stop()
			return 1
		}
	}
}

// watchParent stops the control plane when the process that started it is gone (a test binary that
// crashed or was killed never sends SIGTERM).
func watchParent(signals chan<- os.Signal) {
	parent := os.Getppid()
	for {
		time.Sleep(time.Second)
		if os.Getppid() != parent {
			signals <- syscall.SIGTERM
			return
		}
	}
}

// controlPlane is the running set of components.
type controlPlane struct {
	dir, kubeconfig string
	self            string
	pki             *pki
	etcd            *embed.Etcd
	etcdURL         string
	apiPort         int
	apiserver       *child
	controllerMgr   *child
}

func start(dir string, timeout time.Duration) (*controlPlane, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{dir: dir, self: self, kubeconfig: filepath.Join(dir, "kubeconfig")}
	if cp.pki, err = writePKI(dir); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if err := cp.startEtcd(); err != nil {
		return cp, fmt.Errorf("etcd: %w", err)
	}
	if cp.apiPort, err = freePort(); err != nil {
		return cp, err
	}
	if err := cp.writeKubeconfig(cp.kubeconfig, cp.pki.AdminCert, cp.pki.AdminKey); err != nil {
		return cp, err
	}
	if err := cp.writeKubeconfig(cp.kcmKubeconfig(), cp.pki.KCMCert, cp.pki.KCMKey); err != nil {
		return cp, err
	}
	if err := cp.startAPIServer(timeout); err != nil {
		return cp, err
	}
	if err := cp.startControllerManager(timeout); err != nil {
		return cp, err
	}
	return cp, nil
}

func (cp *controlPlane) serverURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(cp.apiPort)
}

func (cp *controlPlane) startEtcd() error {
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = "e2e"
	cfg.Dir = filepath.Join(cp.dir, "etcd")
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(cp.dir, "etcd.log")}
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return errors.New("not ready within 60s")
	}
	cp.etcd = e
	cp.etcdURL = client.String()
	return nil
}

func (cp *controlPlane) startAPIServer(timeout time.Duration) error {
	p := cp.pki
	args := []string{
		"kube-apiserver",
		"--etcd-servers=" + cp.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.apiPort),
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.ServiceAccountKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		// Loopback is not a valid Endpoints address; nothing in the tests routes to the service.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
	c, err := spawn(cp.self, args, filepath.Join(cp.dir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	cp.apiserver = c
	if err := cp.waitHTTP("/readyz", timeout, c); err != nil {
		return fmt.Errorf("kube-apiserver: %w (log: %s)", err, filepath.Join(cp.dir, "kube-apiserver.log"))
	}
	return nil
}

func (cp *controlPlane) startControllerManager(timeout time.Duration) error {
	p := cp.pki
	args := []string{
		"kube-controller-manager",
		"--kubeconfig=" + cp.kcmKubeconfig(),
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers=" + controllers,
		"--service-account-private-key-file=" + p.ServiceAccountKey,
		"--root-ca-file=" + p.CACert,
		"--use-service-account-credentials=true",
		"--concurrent-deployment-syncs=2",
		"--concurrent-replicaset-syncs=2",
		"--v=1",
	}
	c, err := spawn(cp.self, args, filepath.Join(cp.dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	cp.controllerMgr = c
	// The controller manager is working once the default ServiceAccount exists: Pods need it.
	if err := cp.waitHTTP("/api/v1/namespaces/default/serviceaccounts/default", timeout, c); err != nil {
		return fmt.Errorf("kube-controller-manager: %w (log: %s)", err, filepath.Join(cp.dir, "kube-controller-manager.log"))
	}
	return nil
}

// waitHTTP polls path on the API server with the admin identity until it answers 200, the deadline
// passes, or the component c exits.
func (cp *controlPlane) waitHTTP(path string, timeout time.Duration, c *child) error {
	client, err := cp.adminClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if c.exited() {
			return errors.New("exited before it was ready")
		}
		resp, err := client.Get(cp.serverURL() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (last: %s)", path, timeout, last)
}

func (cp *controlPlane) adminClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(cp.pki.AdminCert, cp.pki.AdminKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cp.pki.caCertificate)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

func (cp *controlPlane) kcmKubeconfig() string {
	return filepath.Join(cp.dir, "kube-controller-manager.kubeconfig")
}

// writeKubeconfig writes a kubeconfig for the client certificate certPath/keyPath.
func (cp *controlPlane) writeKubeconfig(path, certPath, keyPath string) error {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			panic(err) // written by writePKI a moment ago
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: e2e-user
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: e2e
  context:
    cluster: e2e
    user: e2e-user
    namespace: default
current-context: e2e
`, cp.serverURL(), read(cp.pki.CACert), read(certPath), read(keyPath))
	return os.WriteFile(path, []byte(text), 0o600)
}

func (cp *controlPlane) stop() {
	if cp.controllerMgr != nil {
		cp.controllerMgr.stop()
	}
	if cp.apiserver != nil {
		cp.apiserver.stop()
	}
	if cp.etcd != nil {
		cp.etcd.Close()
	}
}

// child is a component running as a child process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

func spawn(self string, args []string, logPath string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// The child dies with this process even if this one is killed without a chance to clean up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait() // nolint:errcheck // the exit is observed through done
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 20 s for a graceful exit, then kills.
func (c *child) stop() {
	c.once.Do(func() {
		if c.exited() {
			return
		}
		c.cmd.Process.Signal(syscall.SIGTERM) // nolint:errcheck
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		select {
		case <-c.done:
		case <-ctx.Done():
			c.cmd.Process.Kill() // nolint:errcheck
			<-c.done
		}
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
