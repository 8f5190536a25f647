package order

import (
	"errors"
	"strings"
	"testing"

	"github.com/spa-engine/spa/persistence"
)

func TestCheckFulfilment(t *testing.T) {
	good := persistence.ShippingAddress{Recipient: " Ana Pérez ", Phone: "300 123 4567", Line1: "Calle 10 # 5-51",
		MunicipalityCode: "05001", PostalCode: "050021"}
	a, err := CheckFulfilment(persistence.FulfilmentShipping, good)
	if err != nil {
		t.Fatalf("good address: %v", err)
	}
	if a.Phone != "+573001234567" || a.DepartmentCode != "05" || a.Recipient != "Ana Pérez" {
		t.Fatalf("normalised: %+v", a)
	}
	if _, err := CheckFulfilment(persistence.FulfilmentPickup, persistence.ShippingAddress{}); err != nil {
		t.Fatalf("pickup: %v", err)
	}
	for _, tc := range []struct {
		name   string
		f      persistence.Fulfilment
		mutate func(*persistence.ShippingAddress)
		field  string
	}{
		{"pickup with address", persistence.FulfilmentPickup, func(*persistence.ShippingAddress) {}, "shipping_address"},
		{"unknown fulfilment", "drone", func(*persistence.ShippingAddress) {}, "fulfilment"},
		{"unknown municipality", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.MunicipalityCode = "05000" }, "municipality_code"},
		{"municipality in another department", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.DepartmentCode = "76" }, "municipality_code"},
		{"unknown department", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.DepartmentCode = "02" }, "department_code"},
		{"foreign phone", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.Phone = "+1 202 555 0143" }, "phone"},
		{"short phone", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.Phone = "300 12" }, "phone"},
		{"no recipient", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.Recipient = " " }, "recipient"},
		{"multi-line street", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.Line1 = "Calle 10\n# 5-51" }, "line1"},
		{"postal code of another department", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.PostalCode = "110111" }, "postal_code"},
		{"postal code not digits", persistence.FulfilmentShipping, func(a *persistence.ShippingAddress) { a.PostalCode = "05002A" }, "postal_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			tc.mutate(&a)
			_, err := CheckFulfilment(tc.f, a)
			var inv InvalidAddress
			if !errors.As(err, &inv) || !errors.Is(err, persistence.ErrInvalid) {
				t.Fatalf("got %v, want InvalidAddress", err)
			}
			if len(inv) != 1 || inv[0].Field != tc.field {
				t.Fatalf("fields %+v, want %s", inv, tc.field)
			}
			if strings.Contains(err.Error(), "Ana") || strings.Contains(err.Error(), "Calle") {
				t.Fatalf("error repeats PII: %v", err)
			}
		})
	}
}

func FuzzCheckFulfilment(f *testing.F) {
	f.Add("Ana", "3001234567", "Calle 10 # 5-51", "05", "05001", "050021")
	f.Fuzz(func(t *testing.T, recipient, phone, line1, dept, muni, postal string) {
		a, err := CheckFulfilment(persistence.FulfilmentShipping, persistence.ShippingAddress{Recipient: recipient,
			Phone: phone, Line1: line1, DepartmentCode: dept, MunicipalityCode: muni, PostalCode: postal})
		if err != nil {
			return
		}
		if !strings.HasPrefix(a.Phone, "+57") || a.MunicipalityCode[:2] != a.DepartmentCode {
			t.Fatalf("accepted %+v", a)
		}
	})
}
