# shellcheck shell=bash
# The serving certificate of the benchmark scripts (sourced, not run): an ECDSA P-256 CA and a
# certificate for localhost and 127.0.0.1 signed by it, valid for two days, made with openssl.

# Writes ca.crt, tls.crt and tls.key into DIR (created); CN names the CA.
make_bench_tls() {
	local dir=$1 cn=$2
	mkdir -p "$dir"
	(
		cd "$dir" || exit 1
		openssl ecparam -name prime256v1 -genkey -noout -out ca.key.sec1 2>/dev/null
		openssl pkcs8 -topk8 -nocrypt -in ca.key.sec1 -out ca.key
		openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=$cn" -out ca.crt \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
		openssl ecparam -name prime256v1 -genkey -noout -out tls.key.sec1 2>/dev/null
		openssl pkcs8 -topk8 -nocrypt -in tls.key.sec1 -out tls.key
		openssl req -new -key tls.key -subj /CN=localhost -out tls.csr 2>/dev/null
		printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
		openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 \
			-extfile ext.cnf -out tls.crt 2>/dev/null
	)
}
