package streams

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// makeCert returns a DER certificate of key pub, signed by signer (self-
// signed when signer's public key is pub), valid from notBefore to notAfter.
func makeCert(t *testing.T, pub, signer any, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	require.NoError(t, err)
	return der
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

// TestPeerID: the certificate check admits exactly one self-signed Ed25519
// certificate within its validity period, and returns its key as the ID;
// everything else fails with ErrPeerIdentity.
func TestPeerID(t *testing.T) {
	pub, priv := newKey(t)
	_, other := newKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	valid := makeCert(t, pub, priv, now.Add(-time.Hour), now.Add(time.Hour))
	own, err := certificate(priv)
	require.NoError(t, err)

	id, err := peerID([][]byte{valid})
	require.NoError(t, err)
	require.Equal(t, overlay.ID(pub), id)
	id, err = peerID(own.Certificate)
	require.NoError(t, err, "the engine's own certificate")
	require.Equal(t, overlay.ID(pub), id)

	for _, tc := range []struct {
		name  string
		certs [][]byte
	}{
		{"none", nil},
		{"two", [][]byte{valid, valid}},
		{"garbage", [][]byte{[]byte("not a certificate")}},
		{"foreign signer", [][]byte{makeCert(t, pub, other, now.Add(-time.Hour), now.Add(time.Hour))}},
		{"ECDSA key", [][]byte{makeCert(t, ec.Public(), ec, now.Add(-time.Hour), now.Add(time.Hour))}},
		{"expired", [][]byte{makeCert(t, pub, priv, now.Add(-2*time.Hour), now.Add(-time.Hour))}},
		{"not yet valid", [][]byte{makeCert(t, pub, priv, now.Add(time.Hour), now.Add(2*time.Hour))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := peerID(tc.certs)
			require.ErrorIs(t, err, ErrPeerIdentity)
			require.True(t, isIdentityErr(err))
		})
	}
}

// TestLoopbackHandshakeChecksPeerID: over real QUIC on loopback, a client
// that expects another ID than the server's fails the handshake with
// ErrPeerIdentity, one that expects the server's ID gets it proved, and a
// server refuses a client whose certificate has expired or is not signed
// by its own key.
func TestLoopbackHandshakeChecksPeerID(t *testing.T) {
	nodes := newNet(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(cfg *tls.Config) error {
		qc, err := a.Sock.Transport().Dial(ctx, b.Sock.LocalAddr(), cfg, QUICConfig())
		if qc != nil {
			qc.CloseWithError(0, "")
		}
		return err
	}

	err := dial(clientTLS(a.eng.cert, c.ID())) // b's socket, c's ID
	require.Error(t, err)
	require.True(t, isIdentityErr(err), "%v", err)
	require.ErrorIs(t, handshakeErr(ctx, err), ErrPeerIdentity)

	qc, err := a.Sock.Transport().Dial(ctx, b.Sock.LocalAddr(), clientTLS(a.eng.cert, b.ID()), QUICConfig())
	require.NoError(t, err)
	id, err := connPeer(qc)
	require.NoError(t, err)
	require.Equal(t, b.ID(), id)
	qc.CloseWithError(0, "")
	// The server drops the connection once the close arrives: only then
	// does its count say anything of the refused ones below.
	testnet.Eventually(t, 10*time.Second, "the server sees the close", func() bool { return b.eng.Counters().Conns == 0 })

	pub, priv := newKey(t)
	_, other := newKey(t)
	now := time.Now()
	for name, der := range map[string][]byte{
		"expired":        makeCert(t, pub, priv, now.Add(-2*time.Hour), now.Add(-time.Hour)),
		"foreign signer": makeCert(t, pub, other, now.Add(-time.Hour), now.Add(time.Hour)),
	} {
		cfg := clientTLS(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, b.ID())
		// In TLS 1.3 the client's handshake completes before the server
		// has checked the client's certificate: the refusal comes as the
		// connection's close.
		qc, err := a.Sock.Transport().Dial(ctx, b.Sock.LocalAddr(), cfg, QUICConfig())
		if err == nil {
			select {
			case <-qc.Context().Done():
				var te *quic.TransportError
				require.ErrorAs(t, context.Cause(qc.Context()), &te, "a client with a certificate %s", name)
				require.True(t, te.ErrorCode.IsCryptoError(), "%v", te)
				require.True(t, te.Remote)
			case <-ctx.Done():
				t.Fatalf("the server kept a client with a certificate %s", name)
			}
		}
		require.Zero(t, b.eng.Counters().Conns, "a client with a certificate %s", name)
	}
}
