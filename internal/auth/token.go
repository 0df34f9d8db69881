package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Token format: TokenPrefix followed by tokenBodyLen base62 characters that
// encode tokenBytes random bytes. The prefix lets people and secret
// scanners recognise a Ferry token.
const (
	// TokenPrefix starts every token.
	TokenPrefix = "ferry_"
	// tokenBytes is the amount of randomness in a token: 256 bits.
	tokenBytes = 32
	// tokenBodyLen is the number of base62 digits 256 bits need.
	tokenBodyLen = 43
	// tokenIDLen is the length of a token's ID, a prefix of its body.
	tokenIDLen = 8
	base62     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Errors about tokens. Their messages never contain a token's plaintext.
var (
	// ErrMalformedToken means a string is not shaped like a Ferry token.
	ErrMalformedToken = errors.New("malformed token")
	// ErrTokenRevoked means a token has been revoked.
	ErrTokenRevoked = errors.New("token revoked")
	// ErrTokenExpired means a token is past its expiry.
	ErrTokenExpired = errors.New("token expired")
)

// Token is an API token as stored: everything but its plaintext, which is
// shown once, when the token is created, and never kept.
type Token struct {
	// ID is TokenID of the plaintext: short, not secret, shown in lists
	// and audit events. The store keeps IDs unique.
	ID string `json:"id"`
	// User names the person or system the token acts for.
	User string `json:"user"`
	// Grants are the roles and scopes the token carries.
	Grants []Grant `json:"grants"`
	// Hash is HashToken of the plaintext. It is left out of JSON so that it
	// cannot leak through an API response.
	Hash string `json:"-"`
	// CreatedAt is when the token was created.
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is when the token stops working; zero means never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RevokedAt is when the token was revoked, or nil.
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	// CreatedBy names who created the token.
	CreatedBy string `json:"createdBy,omitempty"`
}

// NewToken returns a new token's plaintext: TokenPrefix followed by 32 bytes
// from crypto/rand in base62, 49 characters in all.
func NewToken() (plaintext string, err error) {
	return newToken(rand.Reader)
}

func newToken(r io.Reader) (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + encodeBase62(b), nil
}

// encodeBase62 encodes b as a big-endian number in exactly tokenBodyLen
// base62 digits, most significant first.
func encodeBase62(b []byte) string {
	n := new(big.Int).SetBytes(b)
	base := big.NewInt(int64(len(base62)))
	digit := new(big.Int)
	out := make([]byte, tokenBodyLen)
	for i := len(out) - 1; i >= 0; i-- {
		n.DivMod(n, base, digit)
		out[i] = base62[digit.Int64()]
	}
	return string(out)
}

// CheckTokenFormat reports whether plaintext is shaped like a token made by
// NewToken, so that a request carrying something else can be refused
// without a lookup. The error does not repeat plaintext.
func CheckTokenFormat(plaintext string) error {
	body, ok := strings.CutPrefix(plaintext, TokenPrefix)
	if !ok {
		return fmt.Errorf("%w: want the prefix %q", ErrMalformedToken, TokenPrefix)
	}
	if len(body) != tokenBodyLen {
		return fmt.Errorf("%w: want %d characters after %q, got %d", ErrMalformedToken, tokenBodyLen, TokenPrefix, len(body))
	}
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return fmt.Errorf("%w: character %d is not a letter or digit", ErrMalformedToken, len(TokenPrefix)+i+1)
		}
	}
	return nil
}

// HashToken returns the hex SHA-256 of plaintext, the form in which a token
// is stored and looked up. A fast hash is right here, unlike for passwords:
// a token carries 256 random bits, so no amount of hashing speed makes
// guessing feasible, and a slow hash (bcrypt, argon2) would only add
// latency to every request and rule out finding a token by its hash.
func HashToken(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// TokenID returns the short, non-secret identifier of a token: the first 8
// characters after its prefix. Revealing them leaves over 200 secret bits.
// It returns "" for a string that is not shaped like a token, so that
// nothing of an arbitrary secret ends up in a log.
func TokenID(plaintext string) string {
	if CheckTokenFormat(plaintext) != nil {
		return ""
	}
	return plaintext[len(TokenPrefix) : len(TokenPrefix)+tokenIDLen]
}

// Matches reports whether plaintext is t's token. It compares hashes in
// constant time.
func (t Token) Matches(plaintext string) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(plaintext)), []byte(t.Hash)) == 1
}

// Valid returns nil if t may be used at now, or an error wrapping
// ErrTokenRevoked or ErrTokenExpired that says since when. A revoked token
// stays revoked whatever the clock says.
func (t Token) Valid(now time.Time) error {
	if t.RevokedAt != nil {
		return fmt.Errorf("%w at %s", ErrTokenRevoked, t.RevokedAt.UTC().Format(time.RFC3339))
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return fmt.Errorf("%w at %s", ErrTokenExpired, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// Principal returns the principal that t authenticates.
func (t Token) Principal() Principal {
	return Principal{User: t.User, Grants: t.Grants, TokenID: t.ID}
}

// maxDays is the largest number of days a time.Duration can hold.
const maxDays = int64(1<<63-1) / int64(24*time.Hour)

// ParseExpiry parses how long a new token lives: a Go duration ("12h",
// "90m"), a whole number of days ("90d"), or days followed by a duration
// ("1d12h"). The result is positive. "never" returns 0, which a Token reads
// as no expiry.
func ParseExpiry(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	d, err := parseExpiry(s)
	if err != nil {
		return 0, fmt.Errorf("expiry %q: %w", s, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("expiry %q: must be positive (use \"never\" for no expiry)", s)
	}
	return d, nil
}

func parseExpiry(s string) (time.Duration, error) {
	const want = "want a duration such as 12h, a number of days such as 90d, or never"
	daysText, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errors.New(want)
		}
		return d, nil
	}
	if daysText == "" || strings.TrimLeft(daysText, "0123456789") != "" {
		return 0, errors.New(want)
	}
	days, err := strconv.ParseInt(daysText, 10, 64)
	if err != nil || days > maxDays {
		return 0, errors.New("too long")
	}
	d := time.Duration(days) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	extra, err := time.ParseDuration(rest)
	if err != nil || extra < 0 {
		return 0, errors.New(want)
	}
	if d > time.Duration(1<<63-1)-extra {
		return 0, errors.New("too long")
	}
	return d + extra, nil
}
