package streams

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/overlay"
)

// alpn is the TLS application protocol of p2psock streams; its version is
// the stream protocol's (docs/PROTOCOL.md, §12.7).
const alpn = "p2psock/1"

// QUICConfig returns the configuration of every QUIC connection of an
// engine (docs/PROTOCOL.md, §12.7). It is exported for benchmarks that
// compare the engine with plain quic-go under the same settings.
func QUICConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           5 * time.Second,
		MaxIdleTimeout:                 30 * time.Second,
		KeepAlivePeriod:                10 * time.Second,       // holds NAT mappings of direct paths open
		MaxIncomingStreams:             overlay.StreamsPerConn, // Config.MaxStreamsPerConn
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     overlay.StreamWindowBytes, // grows as the program reads
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: overlay.ConnWindowBytes, // the memory budget counts connections in it
		MaxConnectionReceiveWindow:     32 << 20,
	}
}

// quicConfig is QUICConfig with the engine's bound on the streams a peer
// may have open.
func (e *Engine) quicConfig() *quic.Config {
	c := QUICConfig()
	c.MaxIncomingStreams = int64(e.cfg.MaxStreamsPerConn)
	c.EnableDatagrams = e.cfg.OnDatagram != nil // datagram.go
	return c
}

// certificate returns a self-signed X.509 certificate whose key is the
// identity key itself, so that completing the TLS 1.3 handshake (which signs
// with the certificate's key) proves possession of the ID's private key.
func certificate(priv ed25519.PrivateKey) (tls.Certificate, error) {
	pub, ok := priv.Public().(ed25519.PublicKey)
	if !ok || len(priv) != ed25519.PrivateKeySize {
		return tls.Certificate{}, errors.New("p2psock: making the TLS certificate: bad identity key")
	}
	var id overlay.ID
	copy(id[:], pub)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: id.String()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("p2psock: making the TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// peerID checks the certificate chain a peer presented and returns the ID it
// proves: one self-signed Ed25519 certificate. The signature is checked on
// the raw bytes (x509's own check refuses self-signed leaves); the TLS
// handshake has already checked that the peer holds the certificate's key.
func peerID(rawCerts [][]byte) (overlay.ID, error) {
	if len(rawCerts) != 1 {
		return overlay.ID{}, fmt.Errorf("%w: %d certificates, want 1", ErrPeerIdentity, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return overlay.ID{}, fmt.Errorf("%w: %w", ErrPeerIdentity, err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return overlay.ID{}, fmt.Errorf("%w: certificate key is %T, want Ed25519", ErrPeerIdentity, cert.PublicKey)
	}
	if cert.SignatureAlgorithm != x509.PureEd25519 || !ed25519.Verify(pub, cert.RawTBSCertificate, cert.Signature) {
		return overlay.ID{}, fmt.Errorf("%w: certificate not signed by its own key", ErrPeerIdentity)
	}
	now := time.Now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return overlay.ID{}, fmt.Errorf("%w: certificate outside its validity period", ErrPeerIdentity)
	}
	var id overlay.ID
	copy(id[:], pub)
	return id, nil
}

// connPeer returns the ID the peer of an established connection proved.
func connPeer(qc *quic.Conn) (overlay.ID, error) {
	certs := qc.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 {
		return overlay.ID{}, ErrPeerIdentity
	}
	return peerID([][]byte{certs[0].Raw})
}

// clientTLS returns the TLS configuration for dialling the node with ID
// want: the handshake fails unless the server proves it is want.
func clientTLS(cert tls.Certificate, want overlay.ID) *tls.Config {
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
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

// serverTLS returns the TLS configuration of the engine's QUIC listeners:
// any client that proves an ID is admitted.
func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpn},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := peerID(raw)
			return err
		},
	}
}
