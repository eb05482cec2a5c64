package githubtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// maxJWTLifetime is how far in the future GitHub accepts an app JWT's exp.
const maxJWTLifetime = 10 * time.Minute

// clockSkew is the leeway allowed on iat and exp, as GitHub allows some.
const clockSkew = 60 * time.Second

func signJWT(key *rsa.PrivateKey, claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		panic("githubtest: sign JWT: " + err.Error())
	}
	return signing + "." + enc.EncodeToString(sig)
}

// checkJWT verifies an "Authorization: Bearer <jwt>" header and returns
// GitHub's message when it is not acceptable ("" when it is).
func (s *Server) checkJWT(authz string) string {
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || raw == "" {
		return "A JSON web token could not be decoded"
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "A JSON web token could not be decoded"
	}
	enc := base64.RawURLEncoding
	hb, err1 := enc.DecodeString(parts[0])
	cb, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "A JSON web token could not be decoded"
	}
	var head struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &head) != nil || head.Alg != "RS256" {
		return "A JSON web token could not be decoded"
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return "A JSON web token could not be decoded"
	}
	var claims struct {
		Iat *json.Number `json:"iat"`
		Exp *json.Number `json:"exp"`
		Iss any          `json:"iss"`
	}
	if json.Unmarshal(cb, &claims) != nil {
		return "A JSON web token could not be decoded"
	}
	var iss string
	switch v := claims.Iss.(type) {
	case string:
		iss = v
	case float64:
		iss = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if iss != strconv.FormatInt(s.appID, 10) {
		return "'Issuer' claim ('iss') must be an Integer"
	}
	now := time.Now()
	if claims.Exp == nil {
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	}
	exp, err := claims.Exp.Int64()
	if err != nil {
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	}
	if time.Unix(exp, 0).Before(now.Add(-clockSkew)) {
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	}
	if time.Unix(exp, 0).After(now.Add(maxJWTLifetime + clockSkew)) {
		return "'Expiration time' claim ('exp') is too far in the future"
	}
	if claims.Iat != nil {
		iat, err := claims.Iat.Int64()
		if err != nil || time.Unix(iat, 0).After(now.Add(clockSkew)) {
			return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
		}
	}
	return ""
}

// checkToken verifies an installation token and returns its installation,
// or GitHub's message.
func (s *Server) checkToken(authz string) (*installation, string) {
	raw, ok := strings.CutPrefix(authz, "token ")
	if !ok {
		raw, ok = strings.CutPrefix(authz, "Bearer ")
	}
	if !ok || raw == "" {
		return nil, "Requires authentication"
	}
	t, ok := s.tokens[raw]
	if !ok || !s.now().Before(t.expires) {
		return nil, "Bad credentials"
	}
	inst, ok := s.installs[t.installation]
	if !ok {
		return nil, "Bad credentials"
	}
	return inst, ""
}
