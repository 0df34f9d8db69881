package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Checkpoint is a signed statement that the chain's event Seq had Hash at
// Time: whoever holds the public key can check that no event up to Seq was
// changed, removed, inserted or reordered since.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// KeyID names the key that signed it (see PublicKey.ID).
	KeyID string `json:"keyId"`
	// Signature is the base64 (standard, padded) ed25519 signature of
	// SignedBytes.
	Signature string `json:"signature"`
}

// checkpointDomain starts every signed message, so that a checkpoint's
// signature cannot be taken for a signature of anything else.
const checkpointDomain = "ferry audit checkpoint v1\n"

// SignedBytes returns what a checkpoint's signature covers: the line
// "ferry audit checkpoint v1" and a newline, then the canonical JSON object
// {"hash":…,"keyId":…,"seq":…,"time":…} (keys sorted, no whitespace, time as
// TimeLayout writes it).
func (c *Checkpoint) SignedBytes() []byte {
	b := []byte(checkpointDomain)
	b = append(b, `{"hash":`...)
	b = appendString(b, c.Hash)
	b = append(b, `,"keyId":`...)
	b = appendString(b, c.KeyID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, c.Seq, 10)
	b = append(b, `,"time":`...)
	b = appendString(b, formatTime(c.Time))
	return append(b, '}')
}

// PublicKey is an ed25519 public key that verifies checkpoints.
type PublicKey ed25519.PublicKey

// publicKeyPrefix starts the text form of a public key.
const publicKeyPrefix = "ed25519:"

// String returns the key's text form: "ed25519:" and the key's 32 bytes in
// standard base64.
func (k PublicKey) String() string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(k)
}

// ID returns the key's ID: the first 16 hex digits of the SHA-256 of its 32
// bytes.
func (k PublicKey) ID() string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

// ParsePublicKey reads a key in the form PublicKey.String writes.
func ParsePublicKey(s string) (PublicKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key %q: want ed25519:BASE64, as ferry audit pubkey prints it", abbreviate(s))
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: want ed25519: and the base64 of %d bytes", abbreviate(s), ed25519.PublicKeySize)
	}
	return PublicKey(b), nil
}

func abbreviate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// ErrBadSignature is wrapped by the error of a checkpoint whose signature
// does not verify.
var ErrBadSignature = errors.New("bad checkpoint signature")

// VerifyCheckpoint checks c's signature with the key among keys whose ID is
// c.KeyID.
func VerifyCheckpoint(c *Checkpoint, keys []PublicKey) error {
	for _, k := range keys {
		if k.ID() != c.KeyID {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(c.Signature)
		if err != nil || !ed25519.Verify(ed25519.PublicKey(k), c.SignedBytes(), sig) {
			return fmt.Errorf("%w: checkpoint of seq %d (%s) does not verify with key %s", ErrBadSignature,
				c.Seq, formatTime(c.Time), c.KeyID)
		}
		return nil
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	return fmt.Errorf("%w: checkpoint of seq %d (%s) is signed by key %s, not by a trusted key (%s)", ErrBadSignature,
		c.Seq, formatTime(c.Time), c.KeyID, strings.Join(ids, ", "))
}

// Signer signs checkpoints with an ed25519 private key. It is safe for
// concurrent use.
type Signer struct {
	key ed25519.PrivateKey
	pub PublicKey
	id  string
}

// NewSigner returns a Signer with key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	pub := PublicKey(key.Public().(ed25519.PublicKey))
	return &Signer{key: key, pub: pub, id: pub.ID()}
}

// GenerateSigner returns a Signer with a new random key, kept in memory only.
func GenerateSigner() (*Signer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	return NewSigner(key), nil
}

// PublicKey returns the key that verifies the signer's checkpoints.
func (s *Signer) PublicKey() PublicKey { return s.pub }

// Sign returns the checkpoint of head signed at at.
func (s *Signer) Sign(head Head, at time.Time) Checkpoint {
	c := Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: at.UTC(), KeyID: s.id}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, c.SignedBytes()))
	return c
}

// keyPEMType is the PEM block type of a key file: PKCS #8, as openssl writes it.
const keyPEMType = "PRIVATE KEY"

// LoadSigner reads the ed25519 private key in the PEM (PKCS #8) file path.
func LoadSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read audit key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != keyPEMType {
		return nil, fmt.Errorf("audit key %s: want a PEM %q block (PKCS #8 ed25519)", path, keyPEMType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit key %s: a %T, want an ed25519 key", path, k)
	}
	return NewSigner(key), nil
}

// LoadOrCreateSigner reads the key file path, or, when there is none,
// generates a key and writes it there with mode 0600 (never replacing a
// file another process wrote meanwhile). created reports the latter.
func LoadOrCreateSigner(path string) (s *Signer, created bool, err error) {
	s, err = LoadSigner(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	if s, err = GenerateSigner(); err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return nil, false, fmt.Errorf("encode audit key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: der})
	if err := writeNew(path, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			s, err = LoadSigner(path)
			return s, false, err
		}
		return nil, false, fmt.Errorf("write audit key: %w", err)
	}
	return s, true, nil
}

// writeNew writes data to path, which must not exist, with mode 0600: to a
// temporary file first, synced, then linked into place.
func writeNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(tmp, path)
}
