// Package divipola is Colombia's political-administrative division
// (DIVIPOLA, kept by DANE): the 32 departments plus Bogotá D.C. and their
// 1,122 municipalities and non-municipal areas, embedded as CSV so a
// shipping address is checked against real places rather than a regex.
//
// The CSV was transcribed without access to DANE's own file; its totals
// match DANE's, but these codes were corrected by hand and should be
// checked against the published list: Boyacá 15232 Chíquiza, 15236
// Chivor, 15238 Duitama, 15244 El Cocuy, 15248 El Espino, 15407 Villa de
// Leyva, 15442 Maripí, 15755 Socotá, 15757 Socha, 15763 Sotaquirá, 15764
// Soracá; Bolívar 13212 Córdoba, 13222 Clemencia; Cundinamarca 25438
// Medina; Norte de Santander 54125 Cácota, 54128 Cáchira; Santander 68575
// Puerto Wilches.
package divipola

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

//go:embed departments.csv
var departmentsCSV string

//go:embed municipalities.csv
var municipalitiesCSV string

// Department is a first-level division: a department or Bogotá D.C.
type Department struct {
	Code string // 2 digits, e.g. "05"
	Name string
}

// Municipality is a second-level division. Its code's first two digits
// are its department's code.
type Municipality struct {
	Code           string // 5 digits, e.g. "05001"
	Name           string
	DepartmentCode string
}

type index struct {
	departments    []Department
	byDept         map[string]Department
	municipalities map[string]Municipality
	inDept         map[string][]Municipality
}

var load = sync.OnceValue(func() index {
	ix := index{byDept: map[string]Department{}, municipalities: map[string]Municipality{}, inDept: map[string][]Municipality{}}
	for _, rec := range mustRead(departmentsCSV) {
		d := Department{Code: rec[0], Name: rec[1]}
		ix.departments = append(ix.departments, d)
		ix.byDept[d.Code] = d
	}
	for _, rec := range mustRead(municipalitiesCSV) {
		m := Municipality{Code: rec[0], Name: rec[1], DepartmentCode: rec[0][:2]}
		ix.municipalities[m.Code] = m
		ix.inDept[m.DepartmentCode] = append(ix.inDept[m.DepartmentCode], m)
	}
	return ix
})

// mustRead parses an embedded CSV without its header; the files are
// checked by the package tests, so a parse error is a build defect.
func mustRead(s string) [][]string {
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil || len(recs) < 2 {
		panic(fmt.Sprintf("divipola: embedded data: %v", err))
	}
	return recs[1:]
}

// Departments returns every department in code order.
func Departments() []Department { return append([]Department(nil), load().departments...) }

// DepartmentByCode returns the department with the 2-digit code.
func DepartmentByCode(code string) (Department, bool) {
	d, ok := load().byDept[code]
	return d, ok
}

// MunicipalityByCode returns the municipality with the 5-digit code.
func MunicipalityByCode(code string) (Municipality, bool) {
	m, ok := load().municipalities[code]
	return m, ok
}

// Municipalities returns a department's municipalities in code order.
func Municipalities(departmentCode string) []Municipality {
	return append([]Municipality(nil), load().inDept[departmentCode]...)
}

// Find returns the municipalities of a department whose name matches name
// ignoring case, accents and surrounding space ("bogota d.c." finds
// "Bogotá D.C."), for clients that send names rather than codes. Several
// can match only in a department with homonyms, which DIVIPOLA avoids.
func Find(departmentCode, name string) []Municipality {
	want := Fold(name)
	var out []Municipality
	for _, m := range load().inDept[departmentCode] {
		if Fold(m.Name) == want {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Fold lower-cases s, strips accents and collapses spaces.
func Fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.Join(strings.Fields(strings.ToLower(out)), " ")
}
