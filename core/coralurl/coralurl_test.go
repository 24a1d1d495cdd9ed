package coralurl

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	const zone = "localhost"
	tests := []struct {
		host string
		want Origin
	}{
		{"example.com.localhost", Origin{"http", "example.com", 80}},
		{"Example.COM.LocalHost", Origin{"http", "example.com", 80}},
		{"example.com.localhost.", Origin{"http", "example.com", 80}},
		{"example.com.localhost:8080", Origin{"http", "example.com", 80}},
		{"www.example.com.8000.localhost", Origin{"http", "www.example.com", 8000}},
		{"127.0.0.1.8000.localhost", Origin{"http", "127.0.0.1", 8000}},
		{"127.0.0.1.localhost", Origin{"http", "127.0.0.1", 80}},
		{"10.0.0.80.localhost", Origin{"http", "10.0.0.80", 80}},
		{"1.2.3.4.80.localhost", Origin{"http", "1.2.3.4", 80}},
		{"example.com.https.localhost", Origin{"https", "example.com", 443}},
		{"example.com.8443.https.localhost:8080", Origin{"https", "example.com", 8443}},
		{"127.0.0.1.8443.https.localhost", Origin{"https", "127.0.0.1", 8443}},
		{"under_score.example.localhost", Origin{"http", "under_score.example", 80}},
		{"xn--bcher-kva.example.localhost", Origin{"http", "xn--bcher-kva.example", 80}},
		{"a.65535.localhost", Origin{"http", "a", 65535}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.host, zone)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.host, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.host, got, tt.want)
		}
	}
}

func TestParseMultiLabelZone(t *testing.T) {
	got, err := Parse("www.example.com.8080.NYUD.net", "nyud.net")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Origin{"http", "www.example.com", 8080}); got != want {
		t.Fatalf("got %+v want %+v", got, want)
	}
}

func TestParseRejects(t *testing.T) {
	const zone = "localhost"
	tests := []struct {
		host string
		want error
	}{
		{"localhost", ErrBareZone},
		{"LOCALHOST:8080", ErrBareZone},
		{"localhost.", ErrBareZone},
		{"example.com", ErrNotInZone},
		{"example.com:8080", ErrNotInZone},
		{"examplelocalhost", ErrNotInZone},
		{"", ErrNotInZone},
		{".localhost", ErrNotInZone},
		{"1.localhost", ErrInvalid},     // numeric TLD, not an IPv4 address
		{"1.2.3.localhost", ErrInvalid}, // three octets
		{"1.2.3.4.5.6.localhost", ErrInvalid},
		{"256.1.1.1.localhost", ErrInvalid},
		{"01.2.3.4.localhost", ErrInvalid}, // leading zero octet is ambiguous (octal)
		{"a.0.localhost", ErrInvalid},      // port 0
		{"a.65536.localhost", ErrInvalid},  // port out of range
		{"a.08080.localhost", ErrInvalid},  // leading zero port
		{"https.localhost", ErrInvalid},    // reserved label as a host
		{"a..b.localhost", ErrInvalid},     // empty label
		{"-a.localhost", ErrInvalid},       // hyphen at start
		{"a b.localhost", ErrInvalid},      // space
		{"a%2f.localhost", ErrInvalid},     // escape chars
		{"foo.https.8080.localhost", ErrInvalid},
		{"x.localhost.localhost", ErrInvalid}, // origin inside the zone
	}
	for _, tt := range tests {
		_, err := Parse(tt.host, zone)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) error = %v, want %v", tt.host, err, tt.want)
		}
	}
}

func TestCoralize(t *testing.T) {
	tests := []struct{ in, zone, want string }{
		{"http://example.com/", "localhost", "http://example.com.localhost/"},
		{"http://Example.com", "localhost", "http://example.com.localhost/"},
		{"example.com/a/b?c=d#frag", "localhost", "http://example.com.localhost/a/b?c=d"},
		{"http://example.com:80/x", "localhost", "http://example.com.localhost/x"},
		{"http://127.0.0.1:8000/x", "localhost", "http://127.0.0.1.8000.localhost/x"},
		{"https://example.com/", "nyud.net", "http://example.com.https.nyud.net/"},
		{"https://example.com:443/", "nyud.net", "http://example.com.https.nyud.net/"},
		{"https://example.com:8443/a%2Fb", "NYUD.net.", "http://example.com.8443.https.nyud.net/a%2Fb"},
	}
	for _, tt := range tests {
		got, err := Coralize(tt.in, tt.zone)
		if err != nil {
			t.Errorf("Coralize(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Coralize(%q, %q) = %q, want %q", tt.in, tt.zone, got, tt.want)
		}
	}
}

func TestCoralizeURLProxyPort(t *testing.T) {
	u, err := CoralizeURL("http://example.com:8000/p", "localhost", "8080")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.String(), "http://example.com.8000.localhost:8080/p"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestCoralizeRejects(t *testing.T) {
	for _, in := range []string{
		"ftp://example.com/",
		"http://[::1]:80/",
		"http://user:pw@example.com/",
		"http://example.com:99999/",
		"http://example.com:/",
		"http:///path",
		"http://foo.https/",   // would read back as an HTTPS origin
		"http://example.123/", // numeric TLD would read back as a port
		"http://x.localhost/", // inside the zone
		"http://a_b c.com/",
		"http://%zz/",
	} {
		if got, err := Coralize(in, "localhost"); err == nil {
			t.Errorf("Coralize(%q) = %q, want error", in, got)
		}
	}
	if _, err := Coralize("http://example.com/", "bad zone"); err == nil {
		t.Error("Coralize with invalid zone: want error")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []string{
		"http://example.com/", "http://example.com:8000/", "https://example.com/",
		"https://example.com:8443/", "http://127.0.0.1:8000/", "http://10.1.2.3/",
		"https://192.168.1.1:4443/", "http://a-b.c_d.example/",
	} {
		o, _, err := ParseOrigin(in)
		if err != nil {
			t.Fatalf("ParseOrigin(%q): %v", in, err)
		}
		got, err := Parse(o.CoralHost("localhost"), "localhost")
		if err != nil {
			t.Fatalf("Parse(CoralHost(%q)): %v", in, err)
		}
		if got != o {
			t.Errorf("round trip %q: got %+v want %+v", in, got, o)
		}
		if got.String()+"/" != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
}

func TestOriginHelpers(t *testing.T) {
	o := Origin{"https", "example.com", 8443}
	if o.Addr() != "example.com:8443" || o.Authority() != "example.com:8443" {
		t.Errorf("Addr/Authority: %q %q", o.Addr(), o.Authority())
	}
	o.Port = 443
	if o.Authority() != "example.com" || o.Addr() != "example.com:443" {
		t.Errorf("default port: %q %q", o.Authority(), o.Addr())
	}
	if err := (Origin{"gopher", "a.b", 70}).Validate(); err == nil {
		t.Error("Validate accepted gopher")
	}
	if !IsZone("LocalHost.:8080", "localhost") || IsZone("a.localhost", "localhost") {
		t.Error("IsZone")
	}
}

// FuzzParse checks that any host Parse accepts Coralizes back to a name that
// parses to the same origin, and that Parse never panics on garbage.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.com.localhost", "127.0.0.1.8000.localhost", "a.1.https.localhost:80",
		"1.2.3.4.localhost", "localhost", "x..localhost", "a.https.https.localhost",
		"9.9.9.9.9.localhost", "ExAmPle.CoM.LOCALHOST.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		o, err := Parse(host, "localhost")
		if err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned invalid origin %+v: %v", host, o, err)
		}
		ch := o.CoralHost("localhost")
		o2, err := Parse(ch, "localhost")
		if err != nil || o2 != o {
			t.Fatalf("Parse(%q)=%+v; CoralHost=%q parses to %+v, %v", host, o, ch, o2, err)
		}
		u, err := Coralize(o.String()+"/p", "localhost")
		if err != nil {
			t.Fatalf("Coralize(%q): %v", o.String(), err)
		}
		if want := "http://" + ch + "/p"; u != want {
			t.Fatalf("Coralize(%q) = %q want %q", o.String(), u, want)
		}
	})
}

// FuzzCoralize checks the other direction: whatever URL Coralize accepts
// parses back to the origin of that URL.
func FuzzCoralize(f *testing.F) {
	for _, s := range []string{"http://example.com/", "https://1.2.3.4:99/x", "example.org", "http://a.b.c:0/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := CoralizeURL(raw, "localhost", "")
		if err != nil {
			return
		}
		o, _, err := ParseOrigin(raw)
		if err != nil {
			t.Fatalf("Coralize accepted %q but ParseOrigin fails: %v", raw, err)
		}
		got, err := Parse(u.Host, "localhost")
		if err != nil || got != o {
			t.Fatalf("Coralize(%q) host %q parses to %+v, %v; want %+v", raw, u.Host, got, err, o)
		}
	})
}
