package twilio

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/spa-engine/spa/actors/providers/sender"
)

// MaxValidityPeriod is the longest ValidityPeriod Twilio takes (seconds).
const MaxValidityPeriod = 36000

// setTemplate sends t instead of the Body: ContentSid (the template's
// name is its HX… sid), ContentVariables {"1": …} in order, and
// ValidityPeriod from its TTL (rounded up, within 1..36000 s).
func setTemplate(form url.Values, t *sender.Template) error {
	if !strings.HasPrefix(t.Name, "HX") {
		return fmt.Errorf("%w: twilio: a WhatsApp template is sent by its ContentSid (HX…)", sender.ErrRejected)
	}
	vars := make(map[string]string, len(t.Params))
	for i, p := range t.Params {
		vars[strconv.Itoa(i+1)] = p
	}
	b, err := json.Marshal(vars)
	if err != nil {
		return err
	}
	form.Del("Body")
	form.Set("ContentSid", t.Name)
	form.Set("ContentVariables", string(b))
	if t.TTL > 0 {
		secs := int(math.Ceil(t.TTL.Seconds()))
		form.Set("ValidityPeriod", strconv.Itoa(min(max(secs, 1), MaxValidityPeriod)))
	}
	return nil
}
