package p2psock

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// alpn is the TLS application protocol of p2psock streams; its version is
// the stream protocol's (docs/PROTOCOL.md, "Streams").
const alpn = "p2psock/1"

// certificate returns a self-signed X.509 certificate whose key is the
// identity key itself, so that completing the TLS 1.3 handshake (which signs
// with the certificate's key) proves possession of the ID's private key.
func certificate(id *Identity) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: id.ID().String()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	pub := id.priv.Public()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, id.priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("p2psock: making the TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.priv}, nil
}

// peerID checks the certificate chain a peer presented and returns the ID it
// proves: one self-signed Ed25519 certificate. The signature is checked on
// the raw bytes (x509's own check refuses self-signed leaves); the TLS
// handshake has already checked that the peer holds the certificate's key.
func peerID(rawCerts [][]byte) (ID, error) {
	if len(rawCerts) != 1 {
		return ID{}, fmt.Errorf("%w: %d certificates, want 1", ErrPeerIdentity, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return ID{}, fmt.Errorf("%w: %v", ErrPeerIdentity, err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return ID{}, fmt.Errorf("%w: certificate key is %T, want Ed25519", ErrPeerIdentity, cert.PublicKey)
	}
	if cert.SignatureAlgorithm != x509.PureEd25519 || !ed25519.Verify(pub, cert.RawTBSCertificate, cert.Signature) {
		return ID{}, fmt.Errorf("%w: certificate not signed by its own key", ErrPeerIdentity)
	}
	now := time.Now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return ID{}, fmt.Errorf("%w: certificate outside its validity period", ErrPeerIdentity)
	}
	var id ID
	copy(id[:], pub)
	return id, nil
}

// clientTLS returns the TLS configuration for dialing the node with ID want:
// the handshake fails unless the server proves it is want.
func (n *Node) clientTLS(want ID) *tls.Config {
	return &tls.Config{
		Certificates:       []tls.Certificate{n.cert},
		NextProtos:         []string{alpn},
		MinVersion:         tls.VersionTLS13,
		ServerName:         "p2psock",
		InsecureSkipVerify: true, // peerID does the verification
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := peerID(raw)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%w: it is %s, want %s", ErrPeerIdentity, got, want)
			}
			return nil
		},
	}
}

// serverTLS returns the TLS configuration of the node's QUIC listeners: any
// client that proves an ID is admitted.
func (n *Node) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{n.cert},
		NextProtos:   []string{alpn},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := peerID(raw)
			return err
		},
	}
}

// isIdentityErr reports whether err says a peer failed to prove its ID.
func isIdentityErr(err error) bool {
	if errors.Is(err, ErrPeerIdentity) {
		return true
	}
	// quic-go reports a failed verification as a TLS alert from the
	// handshake, not wrapping the callback's error.
	return err != nil && strings.Contains(err.Error(), ErrPeerIdentity.Error())
}
