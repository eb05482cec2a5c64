package guard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"
)

// LinkTTL is how long a decision's details link stays valid.
const LinkTTL = 90 * 24 * time.Hour

// linkSig is the HMAC over a decision id, its repository and the expiry.
func linkSig(secret []byte, id, repo string, exp int64) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "\x00" + repo + "\x00" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(mac.Sum(nil))
}

// DecisionLink returns the signed details URL of a decision under base.
func DecisionLink(base string, secret []byte, id, repo string, now time.Time) string {
	exp := now.Add(LinkTTL).Unix()
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(exp, 10))
	q.Set("sig", linkSig(secret, id, repo, exp))
	return base + "/decisions/" + url.PathEscape(id) + "?" + q.Encode()
}

// VerifyLink reports whether sig and exp (the query of a details link) sign
// the decision id of repo and have not expired at now.
func VerifyLink(secret []byte, id, repo, exp, sig string, now time.Time) bool {
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() >= e || e > now.Add(LinkTTL+time.Hour).Unix() {
		return false
	}
	want := linkSig(secret, id, repo, e)
	return hmac.Equal([]byte(want), []byte(sig))
}
