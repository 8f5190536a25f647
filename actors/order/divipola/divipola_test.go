package divipola

import (
	"regexp"
	"testing"
)

func TestEmbeddedData(t *testing.T) {
	deps := Departments()
	if len(deps) != 33 { // 32 departments and Bogotá D.C.
		t.Fatalf("departments: %d, want 33", len(deps))
	}
	two, five := regexp.MustCompile(`^\d{2}$`), regexp.MustCompile(`^\d{5}$`)
	total := 0
	for _, d := range deps {
		if !two.MatchString(d.Code) || d.Name == "" {
			t.Fatalf("bad department %+v", d)
		}
		ms := Municipalities(d.Code)
		if len(ms) == 0 {
			t.Fatalf("department %s has no municipalities", d.Name)
		}
		for _, m := range ms {
			if !five.MatchString(m.Code) || m.Name == "" || m.Code[:2] != d.Code {
				t.Fatalf("bad municipality %+v in %s", m, d.Code)
			}
		}
		total += len(ms)
	}
	if total != 1122 { // DIVIPOLA: 1,104 municipalities, 18 non-municipal areas
		t.Fatalf("municipalities: %d, want 1122", total)
	}
	// Spot checks against DANE's codes, one per region.
	for code, name := range map[string]string{"05001": "Medellín", "11001": "Bogotá D.C.", "76001": "Cali",
		"08001": "Barranquilla", "13001": "Cartagena de Indias", "88564": "Providencia", "99773": "Cumaribo",
		"15407": "Villa de Leyva", "25754": "Soacha", "91001": "Leticia"} {
		if m, ok := MunicipalityByCode(code); !ok || m.Name != name {
			t.Errorf("%s: got %+v, %v; want %s", code, m, ok, name)
		}
	}
	if _, ok := MunicipalityByCode("05000"); ok {
		t.Error("05000 is not a municipality")
	}
	if d, ok := DepartmentByCode("11"); !ok || d.Name != "Bogotá D.C." {
		t.Errorf("department 11: %+v", d)
	}
}

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		dept, name, want string
	}{
		{"11", "  bogota   d.c. ", "11001"},
		{"05", "MEDELLIN", "05001"},
		{"25", "Chía", "25175"},
		{"52", "tuquerres", "52838"},
	} {
		got := Find(tc.dept, tc.name)
		if len(got) != 1 || got[0].Code != tc.want {
			t.Errorf("Find(%s, %q) = %+v, want %s", tc.dept, tc.name, got, tc.want)
		}
	}
	if got := Find("05", "Cali"); len(got) != 0 {
		t.Errorf("Cali is not in Antioquia: %+v", got)
	}
}
