package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Envelope is the part of a webhook payload the intake reads to route a
// delivery. Processing decodes the payload again into go-github types.
type Envelope struct {
	Action       string `json:"action"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	PullRequest *struct {
		Number int `json:"number"`
	} `json:"pull_request"`
	Issue *struct {
		Number int `json:"number"`
	} `json:"issue"`
	CheckRun *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"check_run"`
	CheckSuite *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"check_suite"`
	MergeGroup *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"merge_group"`
}

// ParseEnvelope decodes the routing fields of a payload. A body that is not a
// JSON object is an error.
func ParseEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Envelope{}, fmt.Errorf("malformed JSON payload: %w", err)
	}
	return e, nil
}

// Key is the ordering key of a delivery: deliveries with equal keys are
// processed one at a time in order. Pull-request scoped events share the
// key of their pull request; check and merge-group events that carry no PR
// number are keyed by their head SHA.
func (e Envelope) Key(event string) string {
	repo := ""
	if e.Repository != nil {
		repo = e.Repository.FullName
	}
	switch {
	case e.PullRequest != nil && e.PullRequest.Number != 0:
		return repo + "#" + strconv.Itoa(e.PullRequest.Number)
	case e.Issue != nil && e.Issue.Number != 0:
		return repo + "#" + strconv.Itoa(e.Issue.Number)
	case e.CheckRun != nil && e.CheckRun.HeadSHA != "":
		return repo + "@" + e.CheckRun.HeadSHA
	case e.CheckSuite != nil && e.CheckSuite.HeadSHA != "":
		return repo + "@" + e.CheckSuite.HeadSHA
	case e.MergeGroup != nil && e.MergeGroup.HeadSHA != "":
		return repo + "@" + e.MergeGroup.HeadSHA
	case repo != "":
		return repo
	case e.Installation != nil:
		return "installation/" + strconv.FormatInt(e.Installation.ID, 10)
	}
	return event
}
