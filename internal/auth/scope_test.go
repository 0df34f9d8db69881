package auth

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
		text string
	}{
		{"", Scope{}, "*"},
		{"*", Scope{}, "*"},
		{"shop", Scope{Pipeline: "shop"}, "shop"},
		{"shop/prod", Scope{Pipeline: "shop", Environment: "prod"}, "shop/prod"},
		{"a", Scope{Pipeline: "a"}, "a"},
		{"eu-1/prod-2", Scope{Pipeline: "eu-1", Environment: "prod-2"}, "eu-1/prod-2"},
		{strings.Repeat("a", 63), Scope{Pipeline: strings.Repeat("a", 63)}, strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		got, err := ParseScope(tt.in)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseScope(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.text {
			t.Errorf("ParseScope(%q).String() = %q, want %q", tt.in, got.String(), tt.text)
		}
	}
}

func TestParseScopeErrors(t *testing.T) {
	tests := []struct {
		in, mention string
	}{
		{"Shop", `"Shop"`},
		{"shop/", `"shop/"`},
		{"/prod", `"/prod"`},
		{"shop/Prod", `"Prod"`},
		{"shop/prod/eu", `"prod/eu"`},
		{"-shop", `"-shop"`},
		{"shop-", `"shop-"`},
		{"sh_op", `"sh_op"`},
		{"**", `"**"`},
		{" shop", `" shop"`},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		_, err := ParseScope(tt.in)
		if err == nil {
			t.Errorf("ParseScope(%q) succeeded", tt.in)
			continue
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("ParseScope(%q) error %q does not mention %s", tt.in, err, tt.mention)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	global := Scope{}
	shop := Scope{Pipeline: "shop"}
	prod := Scope{Pipeline: "shop", Environment: "prod"}
	tests := []struct {
		scope         Scope
		pipeline, env string
		want          bool
	}{
		{global, "", "", true},
		{global, "shop", "", true},
		{global, "shop", "prod", true},
		{shop, "", "", false},
		{shop, "shop", "", true},
		{shop, "shop", "prod", true},
		{shop, "shop", "staging", true},
		{shop, "other", "", false},
		{shop, "other", "prod", false},
		{prod, "", "", false},
		{prod, "shop", "", false},
		{prod, "shop", "prod", true},
		{prod, "shop", "staging", false},
		{prod, "other", "prod", false},
		{Scope{Environment: "prod"}, "shop", "prod", false},
	}
	for _, tt := range tests {
		if got := tt.scope.Covers(tt.pipeline, tt.env); got != tt.want {
			t.Errorf("%+v.Covers(%q, %q) = %v, want %v", tt.scope, tt.pipeline, tt.env, got, tt.want)
		}
	}
}

func TestGrantJSON(t *testing.T) {
	in := []Grant{{Role: RoleViewer}, {Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "prod"}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"role":"viewer","scope":"*"},{"role":"promoter","scope":"shop/prod"}]`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out []Grant
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	err = json.Unmarshal([]byte(`[{"role":"viewer","scope":"Shop"}]`), &out)
	if err == nil || !strings.Contains(err.Error(), `"Shop"`) {
		t.Errorf("unmarshal of a bad scope: %v", err)
	}
	if _, err := json.Marshal(Grant{Role: RoleViewer, Scope: Scope{Environment: "prod"}}); err == nil {
		t.Error("marshal of an environment without pipeline succeeded")
	}
}

func TestParseGrant(t *testing.T) {
	tests := []struct {
		in   string
		want Grant
	}{
		{"admin", Grant{Role: RoleAdmin}},
		{"viewer:*", Grant{Role: RoleViewer}},
		{"releaser:shop", Grant{Role: RoleReleaser, Scope: Scope{Pipeline: "shop"}}},
		{"promoter:shop/prod", Grant{Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "prod"}}},
	}
	for _, tt := range tests {
		got, err := ParseGrant(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseGrant(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "root:shop", "promoter:Shop", "promoter:shop/"} {
		_, err := ParseGrant(in)
		if err == nil || !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseGrant(%q) error = %v, want one naming the value", in, err)
		}
	}
}

func TestValidateGrants(t *testing.T) {
	ok := []Grant{{Role: RoleAdmin}, {Role: RoleViewer, Scope: Scope{Pipeline: "shop", Environment: "prod"}}}
	if err := ValidateGrants(ok); err != nil {
		t.Errorf("ValidateGrants(valid) = %v", err)
	}
	if err := ValidateGrants(nil); err != nil {
		t.Errorf("ValidateGrants(nil) = %v", err)
	}
	bad := []Grant{{Role: "root"}, {Role: RoleAdmin}, {Role: RoleViewer, Scope: Scope{Pipeline: "Shop"}}}
	err := ValidateGrants(bad)
	if err == nil {
		t.Fatal("ValidateGrants(invalid) = nil")
	}
	for _, want := range []string{`grant 0: unknown role "root"`, `grant 2: scope of viewer grant: pipeline name "Shop"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "grant 1") {
		t.Errorf("error %q blames a valid grant", err)
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "*", "shop", "shop/prod", "Shop", "shop/", "/prod", "a/b/c", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("ParseScope(%q) returned an invalid scope: %v", s, err)
		}
		again, err := ParseScope(sc.String())
		if err != nil || again != sc {
			t.Fatalf("ParseScope(%q).String() = %q does not round-trip: %+v, %v", s, sc.String(), again, err)
		}
	})
}
