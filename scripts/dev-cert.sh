#!/usr/bin/env bash
# Writes a self-signed certificate and key for the TLS listener of the example config
# (examples/pinhole.yaml) into DIR, unless they exist. For local runs only: phones will not
# trust it, and production needs a certificate for the server's real name.
set -euo pipefail
dir=${1:?usage: dev-cert.sh DIR}
mkdir -p "$dir"
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then exit 0; fi
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 600 "$dir/key.pem"
echo "dev-cert: wrote $dir/cert.pem (self-signed, CN=localhost)"
