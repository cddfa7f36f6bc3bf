package k8s

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Diagnostic severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// DiagnosticIssue is one problem found, with what to do about it.
type DiagnosticIssue struct {
	Severity   string `json:"severity"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Suggestion string `json:"suggestion"`
}

// Diagnosis is the result of DiagnoseGitRepository.
type Diagnosis struct {
	Healthy bool              `json:"healthy"` // no error-severity issue
	Issues  []DiagnosticIssue `json:"issues"`
	// Ready condition as Flux reports it, if any.
	ReadyStatus  string `json:"readyStatus,omitempty"`
	ReadyReason  string `json:"readyReason,omitempty"`
	ReadyMessage string `json:"readyMessage,omitempty"`
	Revision     string `json:"revision,omitempty"`
}

func (d *Diagnosis) add(sev, code, msg, suggestion string) {
	d.Issues = append(d.Issues, DiagnosticIssue{Severity: sev, Code: code, Message: msg, Suggestion: suggestion})
}

// DiagnoseGitRepository checks a GitRepository in the cluster: the URL form,
// an SSH URL without a secret, a missing secret or one without the keys the
// URL needs, suspension, and Flux's Ready condition message.
//
// Returns ENOTFOUND if the GitRepository does not exist.
func (c *Client) DiagnoseGitRepository(ctx context.Context, namespace, name string) (*Diagnosis, error) {
	var repo sourcev1.GitRepository
	if err := c.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &repo); err != nil {
		return nil, apiError(err, "get GitRepository %s/%s", namespace, name)
	}
	var secret *corev1.Secret
	secretMissing := false
	if ref := repo.Spec.SecretRef; ref != nil && ref.Name != "" {
		var s corev1.Secret
		err := c.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &s)
		switch {
		case apierrors.IsNotFound(err):
			secretMissing = true
		case err != nil:
			return nil, apiError(scrubbed(err), "get secret %s/%s", namespace, ref.Name)
		default:
			secret = &s
		}
	}
	return DiagnoseGitRepositoryObject(&repo, secret, secretMissing), nil
}

var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)

// DiagnoseGitRepositoryObject is DiagnoseGitRepository on objects already
// read: secret is the referenced Secret (nil if none or missing) and
// secretMissing says it was referenced but not found. Only key names of the
// Secret are looked at, never values.
func DiagnoseGitRepositoryObject(repo *sourcev1.GitRepository, secret *corev1.Secret, secretMissing bool) *Diagnosis {
	d := &Diagnosis{}
	raw := repo.Spec.URL
	secretName := ""
	if repo.Spec.SecretRef != nil {
		secretName = repo.Spec.SecretRef.Name
	}
	u, err := url.Parse(raw)
	scheme := ""
	switch {
	case scpLike.MatchString(raw):
		d.add(SeverityError, "url_scp_form",
			"the URL is in scp form (user@host:path), which Flux does not accept",
			"write it as ssh://"+strings.Replace(raw, ":", "/", 1))
		scheme = "ssh"
	case err != nil || u.Host == "":
		d.add(SeverityError, "url_invalid", "the URL is not a valid http(s):// or ssh:// URL",
			"use https://host/org/repo.git or ssh://git@host/org/repo.git")
	default:
		scheme = u.Scheme
		switch scheme {
		case "http":
			d.add(SeverityWarning, "url_plain_http", "the URL uses plain http: credentials and content travel unencrypted",
				"use https:// unless this is a local or trusted Git server")
		case "https", "ssh":
		default:
			d.add(SeverityError, "url_scheme", fmt.Sprintf("the URL scheme %q is not supported by Flux", scheme),
				"use https:// or ssh://")
		}
		if _, hasPassword := u.User.Password(); hasPassword && scheme != "ssh" {
			d.add(SeverityError, "url_credentials", "the URL embeds a password",
				"remove it from the URL and put it in a basic-auth credentials secret")
		}
		if scheme == "ssh" && u.User == nil {
			d.add(SeverityWarning, "ssh_no_user", "the SSH URL has no user",
				"most Git hosts expect the user git: ssh://git@"+u.Host+u.Path)
		}
	}
	switch {
	case scheme == "ssh" && secretName == "":
		d.add(SeverityError, "ssh_without_secret", "the URL uses SSH but no secret is referenced",
			"create SSH credentials (private key + known_hosts) and set secretRef")
	case secretMissing:
		d.add(SeverityError, "secret_missing", fmt.Sprintf("the secret %q does not exist in namespace %s", secretName, repo.Namespace),
			"create the credentials secret in the same namespace as the GitRepository")
	case secret != nil:
		has := func(k string) bool { _, ok := secret.Data[k]; return ok }
		switch scheme {
		case "ssh":
			if !has(SecretKeyIdentity) {
				d.add(SeverityError, "secret_no_identity", fmt.Sprintf("the secret %q has no %q key for an SSH URL", secretName, SecretKeyIdentity),
					"recreate it as SSH credentials")
			}
			if !has(SecretKeyKnownHosts) {
				d.add(SeverityError, "secret_no_known_hosts", fmt.Sprintf("the secret %q has no %q key", secretName, SecretKeyKnownHosts),
					"add the server's host keys (ssh-keyscan output) as known_hosts")
			}
		case "http", "https":
			basic := has(SecretKeyUsername) && has(SecretKeyPassword)
			if !basic && !has(SecretKeyBearerToken) && !has("ca.crt") && !has("tls.crt") {
				hint := "recreate it as basic-auth or token credentials"
				if has(SecretKeyIdentity) {
					hint = "it holds SSH credentials: use an ssh:// URL, or create basic-auth/token credentials"
				}
				d.add(SeverityError, "secret_no_http_auth", fmt.Sprintf("the secret %q has neither username/password nor bearerToken", secretName), hint)
			}
		}
	}
	if repo.Spec.Suspend {
		d.add(SeverityWarning, "suspended", "the GitRepository is suspended: Flux does not fetch new commits",
			"resume it")
	}
	if a := repo.Status.Artifact; a != nil {
		d.Revision = a.Revision
	}
	ready := findCondition(repo.Status.Conditions, conditionReady)
	switch {
	case ready == nil:
		if !repo.Spec.Suspend {
			d.add(SeverityWarning, "not_reconciled", "Flux has not reported on this GitRepository yet",
				"check that source-controller is running (Flux health)")
		}
	default:
		d.ReadyStatus, d.ReadyReason, d.ReadyMessage = string(ready.Status), ready.Reason, ready.Message
		switch ready.Status {
		case metav1.ConditionFalse:
			d.add(SeverityError, "not_ready", "Flux reports: "+ready.Message, suggestionFor(ready.Reason, ready.Message))
		case metav1.ConditionUnknown:
			d.add(SeverityInfo, "reconciling", "Flux is reconciling: "+ready.Message, "wait for the fetch to finish")
		}
		if ready.ObservedGeneration > 0 && ready.ObservedGeneration < repo.Generation {
			d.add(SeverityInfo, "stale_status", "the status is from an older version of the spec",
				"wait for source-controller to pick up the change, or trigger a sync")
		}
	}
	d.Healthy = true
	for _, i := range d.Issues {
		if i.Severity == SeverityError {
			d.Healthy = false
		}
	}
	return d
}

// suggestionFor turns common Git fetch failures into advice.
func suggestionFor(reason, msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "authentication required") || strings.Contains(m, "authentication failed") ||
		strings.Contains(m, "401") || strings.Contains(m, "403"):
		return "check the credentials secret: the Git server refused them"
	case strings.Contains(m, "knownhosts") || strings.Contains(m, "known_hosts") || strings.Contains(m, "host key"):
		return "refresh known_hosts in the SSH credentials secret (ssh-keyscan the Git host)"
	case strings.Contains(m, "couldn't find remote ref") || strings.Contains(m, "reference not found") ||
		strings.Contains(m, "unable to resolve"):
		return "check the branch, tag or semver range: it does not exist in the repository"
	case strings.Contains(m, "no such host") || strings.Contains(m, "connection refused") ||
		strings.Contains(m, "timeout") || strings.Contains(m, "i/o"):
		return "check the URL host and that the cluster can reach it (DNS, firewall, proxy)"
	case strings.Contains(m, "repository not found") || strings.Contains(m, "404"):
		return "check the repository path in the URL and that the credentials can see it"
	case strings.Contains(m, "secret"):
		return "check that the referenced secret exists and has the expected keys"
	}
	if reason != "" {
		return "see the " + reason + " events of this GitRepository for details"
	}
	return "see this GitRepository's events for details"
}
