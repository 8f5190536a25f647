package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/persistence"
)

// The catalogue API: services, staff with their hours, date overrides and
// time off, and shared resources. Reads of active entries are public (a
// booking page needs them); every change is admin-only and idempotent.
// The rules, the audit and the CatalogueChanged events are the catalogue
// service's (actors/service/catalogue); these handlers decode, call and
// encode.

func (s *server) listServices(activeOnly bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		list, err := s.cat.Services(c.UserContext(), activeOnly)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"services": views(list, catalogue.ServiceView)})
	}
}

func (s *server) getService(activeOnly bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := slugParam(c, "id")
		if err != nil {
			return err
		}
		sv, err := s.cat.Service(c.UserContext(), id, activeOnly)
		if err != nil {
			return err
		}
		return c.JSON(catalogue.ServiceView(sv))
	}
}

func (s *server) putService(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := catalogue.ServiceInput{ID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	sv, err := s.cat.PutService(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(catalogue.ServiceView(sv))
}

func (s *server) listStaff(admin bool) fiber.Handler {
	view := catalogue.PublicStaffView
	if admin {
		view = catalogue.StaffView
	}
	return func(c *fiber.Ctx) error {
		list, err := s.cat.Staff(c.UserContext(), !admin)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"staff": views(list, view)})
	}
}

func (s *server) getStaff(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	m, err := s.cat.StaffMember(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(catalogue.StaffView(m))
}

func (s *server) putStaff(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := catalogue.StaffInput{ID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	m, err := s.cat.PutStaff(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(catalogue.StaffView(m))
}

// staffDate reads the staff id and the date of an override's path.
func staffDate(c *fiber.Ctx) (id, date string, err error) {
	if id, err = slugParam(c, "id"); err != nil {
		return "", "", err
	}
	date, err = dateParam(c, "date")
	return id, date, err
}

func (s *server) putOverride(c *fiber.Ctx, tx persistence.Tx) error {
	id, date, err := staffDate(c)
	if err != nil {
		return err
	}
	in := catalogue.OverrideInput{StaffID: id, Date: date}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	o, err := s.cat.PutOverride(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(catalogue.OverrideView(o))
}

func (s *server) deleteOverride(c *fiber.Ctx, tx persistence.Tx) error {
	id, date, err := staffDate(c)
	if err != nil {
		return err
	}
	if err := s.cat.DeleteOverride(c.UserContext(), tx, s.caller(c), id, date); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listOverrides(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	from, err := dateParam(c, "from")
	if err != nil {
		return err
	}
	to, err := dateParam(c, "to")
	if err != nil {
		return err
	}
	list, err := s.cat.Overrides(c.UserContext(), id, from, to)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"overrides": views(list, catalogue.OverrideView)})
}

func (s *server) addTimeOff(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := catalogue.TimeOffInput{StaffID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := s.cat.AddTimeOff(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(catalogue.TimeOffView(t))
}

func (s *server) deleteTimeOff(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.cat.DeleteTimeOff(c.UserContext(), tx, s.caller(c), id, c.Params("timeOffID")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listTimeOff(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	list, err := s.cat.TimeOff(c.UserContext(), id, from, to)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"time_off": views(list, catalogue.TimeOffView)})
}

func (s *server) putResource(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := catalogue.ResourceInput{ID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := s.cat.PutResource(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(catalogue.ResourceView(r))
}

func (s *server) listResources(c *fiber.Ctx) error {
	list, err := s.cat.Resources(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"resources": views(list, catalogue.ResourceView)})
}
