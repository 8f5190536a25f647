package gateway

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/service/booking"
)

// TestSlotsJSONMatchesEncodingJSON: the hand-written encoder writes
// byte for byte what encoding/json writes for []slotJSON, for plain ids
// and for ones that need escaping, whole and fractional seconds, any zone.
func TestSlotsJSONMatchesEncodingJSON(t *testing.T) {
	bogota, err := time.LoadLocation("America/Bogota")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, bogota)
	in := []availability.Slot{
		{Start: start, End: start.Add(time.Hour), StaffID: "ana"},
		{Start: start.Add(1500 * time.Millisecond).UTC(), End: start.Add(time.Hour + time.Nanosecond), StaffID: `we"ird<&>\é` + "\n"},
	}
	for _, slots := range [][]availability.Slot{nil, in[:1], in} {
		want := make([]slotJSON, len(slots))
		for i, s := range slots {
			want[i] = slotJSON{s.Start.UTC(), s.End.UTC(), s.StaffID}
		}
		wantJSON, err := json.Marshal(map[string]any{"slots": want})
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(map[string]any{"slots": slotsJSON(slots)})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(wantJSON) {
			t.Fatalf("got  %s\nwant %s", got, wantJSON)
		}
		for _, id := range []string{"massage", `odd"<id>`} {
			want, err := json.Marshal(fiber.Map{"service_id": id, "slots": want})
			if err != nil {
				t.Fatal(err)
			}
			if got := availabilityBody(id, slots); string(got) != string(want) {
				t.Fatalf("availability body\n got %s\nwant %s", got, want)
			}
		}
	}
}

// holdBodies are claim bodies in the usual form and in every way of
// leaving it: escapes, other spellings, nulls, duplicates, unknown fields,
// bad times, trailing bytes, broken JSON.
var holdBodies = []string{
	`{"service_id":"facial","staff_id":"ana","start":"2026-12-01T10:00:00-05:00"}`,
	` { "service_id" : "facial" ,` + "\n\t\r" + ` "start" : "2026-12-01T15:00:00Z", "client_id":"c-1", "package_id":"01JDXQ7Z9V8K3M2N4P5R6S7T8V" } ` + "\n",
	`{}`, ` {} `, `{"start":"2026-12-01T15:00:00.123456789Z"}`,
	`{"service_id":"fa\u0063ial","start":"2026-12-01T15:00:00Z"}`,
	`{"service_id":"facial\"","start":"2026-12-01T15:00:00Z"}`,
	`{"Service_ID":"facial","start":"2026-12-01T15:00:00Z"}`,
	`{"service_id":null,"start":"2026-12-01T15:00:00Z"}`,
	`{"service_id":"a","service_id":"b"}`,
	`{"service_id":"facial","extra":"x"}`,
	`{"service_id":7}`, `{"start":"tomorrow"}`, `{"start":"2026-12-01T15:00:00"}`, `{"start":"2026-13-01T15:00:00Z"}`,
	`{"start":"2026-12-01T15:00:00+25:00"}`, `{"start":""}`,
	`{"service_id":"facial"} x`, `{"service_id":"facial"}{}`, `{"service_id":"facial",}`, `{"service_id" "facial"}`,
	`{"service_id":"facial"`, `[]`, `"x"`, ``, `   `, `{`, `}`, `{"service_id":"caf` + "\xe9" + `"}`, `{"staff_id":"an` + "\x01" + `a"}`,
	`{"staff_id":"ana"}` + "\x00",
}

// TestDecodeHoldMatchesDecodeJSON: the hand-read claim body gives what
// decodeJSON gives (the same input, or the same error), whatever the body
// and its headers.
func TestDecodeHoldMatchesDecodeJSON(t *testing.T) {
	fast := 0
	for _, body := range holdBodies {
		for _, hdr := range [][2]string{{"application/json", ""}, {"application/json; charset=utf-8", ""}, {"text/plain", ""}, {"application/json", "gzip"}} {
			if compareHoldDecoders(t, body, hdr[0], hdr[1]) {
				fast++
			}
		}
	}
	if fast < 5 {
		t.Fatalf("only %d bodies took the hand-read path", fast)
	}
}

// FuzzDecodeHold: go test -fuzz FuzzDecodeHold ./gateway
func FuzzDecodeHold(f *testing.F) {
	for _, b := range holdBodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) { compareHoldDecoders(t, body, "application/json", "") })
}

// compareHoldDecoders decodes body both ways and reports whether the
// hand-read path took it.
func compareHoldDecoders(t *testing.T, body, contentType, encoding string) bool {
	t.Helper()
	app := fiber.New(fiber.Config{Immutable: true})
	var fctx fasthttp.RequestCtx
	fctx.Request.Header.SetContentType(contentType)
	if encoding != "" {
		fctx.Request.Header.Set(fiber.HeaderContentEncoding, encoding)
	}
	fctx.Request.SetBodyString(body)
	c := app.AcquireCtx(&fctx)
	defer app.ReleaseCtx(c)

	got, gotErr := decodeHold(c)
	var want holdInput
	wantErr := decodeJSON(c, &want)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("body %q (%s, %q): error %v, want %v", body, contentType, encoding, gotErr, wantErr)
	}
	same := got.ServiceID == want.ServiceID && got.StaffID == want.StaffID && got.ClientID == want.ClientID &&
		got.PackageID == want.PackageID && got.Start.Equal(want.Start) &&
		got.Start.Format(time.RFC3339Nano) == want.Start.Format(time.RFC3339Nano)
	if !same {
		t.Fatalf("body %q: got %+v, want %+v", body, got, want)
	}
	var probe holdInput
	return gotErr == nil && contentType == "application/json" && encoding == "" && probe.parse([]byte(body))
}

// TestIsSlugMatchesSlugRE: the booking service's hand-written check
// accepts exactly what the catalogue's slugRE accepts.
func TestIsSlugMatchesSlugRE(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, s := range []string{"", "a", "0", "facial", "a-b_c9", "-a", "_a", "A", "aB", "a b", "a.b", "é", long, long + "a", "a\n", "\na", "ab-", "a_"} {
		if booking.IsSlug(s) != slugRE.MatchString(s) {
			t.Errorf("IsSlug(%q) = %v, slugRE says %v", s, booking.IsSlug(s), slugRE.MatchString(s))
		}
	}
	for b := range 256 {
		for _, s := range []string{string([]byte{byte(b)}), "a" + string([]byte{byte(b)})} {
			if booking.IsSlug(s) != slugRE.MatchString(s) {
				t.Errorf("IsSlug(%q) = %v, slugRE says %v", s, booking.IsSlug(s), slugRE.MatchString(s))
			}
		}
	}
}

// TestTakenDetailsAppendJSON: the refusal's details write what
// encoding/json writes for them.
func TestTakenDetailsAppendJSON(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, alts := range [][]availability.Slot{nil, {{Start: start, End: start.Add(time.Hour), StaffID: `a<"b`}, {Start: start, End: start, StaffID: "c"}}} {
		d := takenDetails{slotsJSON(alts)}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON([]byte("x")); string(got) != "x"+string(want) {
			t.Fatalf("got %s, want x%s", got, want)
		}
	}
}

// TestTakenDetailsReusesWrittenList: lists refused with again and again,
// interleaved (a hot calendar's, one per start), are written from the kept
// JSON, byte for byte what encoding/json writes; a shorter view of a kept
// list and an empty one are written for themselves.
func TestTakenDetailsReusesWrittenList(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var hot []availability.Slot
	for i := range 5 {
		hot = append(hot, availability.Slot{Start: start.Add(time.Duration(i) * time.Hour), End: start.Add(time.Duration(i+1) * time.Hour), StaffID: "ana"})
	}
	other := slices.Clone(hot)
	other[0].StaffID = "bea"
	for i, alts := range [][]availability.Slot{hot, hot, hot, hot[:2], hot, other, hot, other, other, hot, other, {}, nil, hot, hot} {
		d := takenDetails{slotsJSON(alts)}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("list %d: got %s, want %s", i, got, want)
		}
	}
	if kept := writtenLists[listSlot(hot)].kept.Load(); kept == nil || !sameList(kept.list, hot) {
		t.Fatal("the list written again and again is not kept")
	}
}
