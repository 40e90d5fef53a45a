package testnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SelfSignedTLS returns TLS configurations for a QUIC listener (a fresh
// self-signed certificate) and a client that skips verifying it, both
// speaking the ALPN protocol proto: for tests that run quic-go over a
// PacketConn of their own.
func SelfSignedTLS(t testing.TB, proto string) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{proto},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{proto},
	}
	client = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proto}} //nolint:gosec // a test's own certificate
	return server, client
}
