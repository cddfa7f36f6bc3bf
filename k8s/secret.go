package k8s

import (
	"context"
	"errors"
	"strings"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// Git credential kinds, as reported in GitCredentialsInfo.Type and the
// fluxgate.dev/credential-type label.
const (
	CredentialBasicAuth = "basic-auth"
	CredentialToken     = "token"
	CredentialSSH       = "ssh"
)

// Keys of a Flux Git credential Secret (source-controller GitRepository docs).
const (
	SecretKeyUsername    = "username"
	SecretKeyPassword    = "password"
	SecretKeyBearerToken = "bearerToken"
	SecretKeyIdentity    = "identity"
	SecretKeyIdentityPub = "identity.pub"
	SecretKeyKnownHosts  = "known_hosts"
)

// BasicAuth is HTTPS basic access authentication.
type BasicAuth struct {
	Username string
	Password string
}

// TokenAuth is an HTTPS access token. With Username set (GitHub and GitLab
// personal access tokens: any non-empty user, e.g. "git") it is sent as basic
// auth (username + password=token); without, as a bearer token
// (bearerToken key), as Flux documents.
type TokenAuth struct {
	Token    string
	Username string
}

// SSHAuth is an SSH private key and the known_hosts lines of the server.
type SSHAuth struct {
	PrivateKey []byte // PEM / OpenSSH private key
	Passphrase string // optional; stored as "password"
	KnownHosts []byte // known_hosts lines, required by Flux
}

// GitCredentials holds exactly one kind of Git credential.
type GitCredentials struct {
	Basic *BasicAuth
	Token *TokenAuth
	SSH   *SSHAuth
}

// GitCredentialsInfo is what callers get back: never the data.
type GitCredentialsInfo struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Type is basic-auth, token or ssh.
	Type string `json:"type"`
	// SecretType is the Kubernetes Secret type (Opaque, as `flux create
	// secret git` makes).
	SecretType string `json:"secretType"`
}

// secretData validates creds and returns the Secret data Flux expects.
// Errors name the field but never carry its value.
func (g GitCredentials) secretData() (string, map[string][]byte, error) {
	n := 0
	for _, set := range []bool{g.Basic != nil, g.Token != nil, g.SSH != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return "", nil, fluxgate.InvalidField("credentials", "give exactly one of basic, token or ssh credentials")
	}
	switch {
	case g.Basic != nil:
		if g.Basic.Username == "" {
			return "", nil, fluxgate.InvalidField("basic.username", "username is required")
		}
		if g.Basic.Password == "" {
			return "", nil, fluxgate.InvalidField("basic.password", "password is required")
		}
		return CredentialBasicAuth, map[string][]byte{
			SecretKeyUsername: []byte(g.Basic.Username),
			SecretKeyPassword: []byte(g.Basic.Password),
		}, nil
	case g.Token != nil:
		if strings.TrimSpace(g.Token.Token) == "" {
			return "", nil, fluxgate.InvalidField("token", "token is required")
		}
		if g.Token.Username != "" {
			return CredentialToken, map[string][]byte{
				SecretKeyUsername: []byte(g.Token.Username),
				SecretKeyPassword: []byte(g.Token.Token),
			}, nil
		}
		return CredentialToken, map[string][]byte{SecretKeyBearerToken: []byte(g.Token.Token)}, nil
	default:
		s := g.SSH
		if len(s.PrivateKey) == 0 {
			return "", nil, fluxgate.InvalidField("ssh.privateKey", "private key is required")
		}
		var signer ssh.Signer
		var err error
		if s.Passphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(s.PrivateKey, []byte(s.Passphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(s.PrivateKey)
		}
		if err != nil {
			// Never include err: some parsers quote input.
			return "", nil, fluxgate.InvalidField("ssh.privateKey", "not a valid SSH private key (or wrong passphrase)")
		}
		if len(s.KnownHosts) == 0 {
			return "", nil, fluxgate.InvalidField("ssh.knownHosts", "known_hosts is required (e.g. the output of ssh-keyscan)")
		}
		if err := validKnownHosts(s.KnownHosts); err != nil {
			return "", nil, err
		}
		data := map[string][]byte{
			SecretKeyIdentity:    s.PrivateKey,
			SecretKeyIdentityPub: ssh.MarshalAuthorizedKey(signer.PublicKey()),
			SecretKeyKnownHosts:  s.KnownHosts,
		}
		if s.Passphrase != "" {
			data[SecretKeyPassword] = []byte(s.Passphrase)
		}
		return CredentialSSH, data, nil
	}
}

func validKnownHosts(b []byte) error {
	rest, lines := b, 0
	for len(strings.TrimSpace(string(rest))) > 0 {
		_, _, _, _, next, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			return fluxgate.InvalidField("ssh.knownHosts", "known_hosts line %d is not valid", lines+1)
		}
		lines++
		rest = next
	}
	if lines == 0 {
		return fluxgate.InvalidField("ssh.knownHosts", "known_hosts has no host key")
	}
	return nil
}

// ApplyGitCredentials creates or replaces the Secret name in namespace with
// Git credentials in the shape Flux's source-controller reads, labelled with
// labels (e.g. the project) plus managed-by and credential-type. It returns
// only the name and type.
//
// Returns EINVALID (naming the field, never its value) for bad credentials.
func (c *Client) ApplyGitCredentials(ctx context.Context, namespace, name string, creds GitCredentials, labels map[string]string) (*GitCredentialsInfo, error) {
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return nil, fluxgate.InvalidField("name", "name must be a lowercase DNS name (a-z, 0-9, '-', '.')")
	}
	if len(validation.IsDNS1123Label(namespace)) > 0 {
		return nil, fluxgate.InvalidField("namespace", "namespace must be a lowercase DNS label")
	}
	typ, data, err := creds.secretData()
	if err != nil {
		return nil, err
	}
	l := map[string]string{}
	for k, v := range labels {
		l[k] = v
	}
	l[LabelManagedBy] = ManagedByValue
	l[LabelCredentialType] = typ
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: l},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	u, err := toApplyUnstructured(secret)
	if err != nil {
		return nil, err
	}
	if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		// The API server does not echo Secret data in errors; keep only the
		// status reason to be sure.
		return nil, apiError(scrubbed(err), "apply secret %s/%s", namespace, name)
	}
	return &GitCredentialsInfo{Name: name, Namespace: namespace, Type: typ, SecretType: string(corev1.SecretTypeOpaque)}, nil
}

// GitCredentials returns the name and type of a credential Secret, never its
// data. Returns ENOTFOUND if it does not exist.
func (c *Client) GitCredentials(ctx context.Context, namespace, name string) (*GitCredentialsInfo, error) {
	var meta metav1.PartialObjectMetadata
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := c.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &meta); err != nil {
		return nil, apiError(err, "get secret %s/%s", namespace, name)
	}
	return &GitCredentialsInfo{Name: name, Namespace: namespace, Type: meta.Labels[LabelCredentialType], SecretType: string(corev1.SecretTypeOpaque)}, nil
}

// DeleteGitCredentials deletes a credential Secret; a missing one is fine.
func (c *Client) DeleteGitCredentials(ctx context.Context, namespace, name string) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := c.c.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		return apiError(scrubbed(err), "delete secret %s/%s", namespace, name)
	}
	return nil
}

// scrubbed keeps an API error's status (code, reason) and drops its message
// and causes, which could quote submitted values.
func scrubbed(err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: st.Status, Code: st.Code, Reason: st.Reason,
		Message: "secret request failed: " + string(st.Reason),
	}}
}
