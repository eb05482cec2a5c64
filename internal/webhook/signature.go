package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Signature errors. Their text never contains a secret or a signature.
var (
	ErrNoSignature  = errors.New("missing X-Hub-Signature-256 header")
	ErrBadSignature = errors.New("X-Hub-Signature-256 does not match the payload")
)

// Verify checks header (the X-Hub-Signature-256 value, "sha256=<hex>")
// against the HMAC-SHA256 of body under any of secrets, in constant time per
// secret. Several secrets let a rotation accept the previous one for a while.
func Verify(header string, body []byte, secrets ...[]byte) error {
	if header == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != sha256.Size*2 {
		return ErrBadSignature
	}
	want, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrBadSignature
	}
	match := 0
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		mac := hmac.New(sha256.New, s)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), want) {
			match = 1
		}
	}
	if match == 0 {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value of body under secret, as GitHub
// computes it. Tests and the load tool use it to send real deliveries.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
