package guard

import "testing"

func TestQueuedPull(t *testing.T) {
	tests := []struct {
		ref  string
		want int
		ok   bool
	}{
		{"refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64", 104, true},
		{"refs/heads/gh-readonly-queue/release/1.2/pr-7-abc", 7, true},
		{"refs/heads/main", 0, false},
		{"refs/heads/gh-readonly-queue/main/pr-x-abc", 0, false},
		{"refs/heads/gh-readonly-queue/main/pr-12", 0, false},
		{"refs/heads/feature/pr-12-abc", 0, false},
	}
	for _, tt := range tests {
		n, ok := queuedPull(tt.ref)
		if n != tt.want || ok != tt.ok {
			t.Errorf("queuedPull(%q) = %d, %v; want %d, %v", tt.ref, n, ok, tt.want, tt.ok)
		}
	}
}
