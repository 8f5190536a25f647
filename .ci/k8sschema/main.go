// Command k8sschema writes JSON schemas of the Kubernetes kinds deploy/k8s
// uses, in the file layout kubeconform's -schema-location template expects
// ({{.ResourceKind}}{{.KindSuffix}}.json), so kubeconform runs offline.
//
// kubeconform embeds no schemas: by default it downloads them from GitHub,
// which CI cannot reach. These are derived from the Go types of k8s.io/api
// (pinned in go.mod, so the Kubernetes version is explicit) by reflection:
// every field with its JSON name and type, strict (an unknown field is an
// error, as with kubeconform -strict), quantities and int-or-string as the
// API accepts them. What the Go types cannot say is left out: required
// fields and enum values (the API server still checks those).
//
//	go run . OUTDIR
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kinds are the objects schemas are written for: what deploy/k8s has, and
// a few it may grow.
var kinds = []struct {
	apiVersion, kind string
	obj              any
}{
	{"v1", "Service", corev1.Service{}},
	{"v1", "ServiceAccount", corev1.ServiceAccount{}},
	{"v1", "ConfigMap", corev1.ConfigMap{}},
	{"v1", "Secret", corev1.Secret{}},
	{"apps/v1", "StatefulSet", appsv1.StatefulSet{}},
	{"apps/v1", "Deployment", appsv1.Deployment{}},
	{"networking.k8s.io/v1", "NetworkPolicy", networkingv1.NetworkPolicy{}},
	{"policy/v1", "PodDisruptionBudget", policyv1.PodDisruptionBudget{}},
	{"autoscaling/v2", "HorizontalPodAutoscaler", autoscalingv2.HorizontalPodAutoscaler{}},
}

// quantityPattern is the grammar of resource.Quantity as a string
// ("500m", "1Gi", "2", "1e3").
const quantityPattern = `^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`

// special are types whose JSON form is not their Go structure (they
// marshal themselves).
var special = map[reflect.Type]map[string]any{
	reflect.TypeFor[resource.Quantity](): {"oneOf": []any{
		map[string]any{"type": "string", "pattern": quantityPattern},
		map[string]any{"type": "number"},
	}},
	reflect.TypeFor[intstr.IntOrString](): {"oneOf": []any{
		map[string]any{"type": "string"},
		map[string]any{"type": "integer"},
	}},
	reflect.TypeFor[metav1.Time]():          {"type": []string{"string", "null"}},
	reflect.TypeFor[metav1.MicroTime]():     {"type": []string{"string", "null"}},
	reflect.TypeFor[metav1.Duration]():      {"type": "string"},
	reflect.TypeFor[runtime.RawExtension](): {},
	reflect.TypeFor[metav1.FieldsV1]():      {},
}

type generator struct {
	defs map[string]any
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: k8sschema OUTDIR")
		os.Exit(2)
	}
	out := os.Args[1]
	if err := os.MkdirAll(out, 0o755); err != nil {
		fail(err)
	}
	for _, k := range kinds {
		g := &generator{defs: map[string]any{}}
		root := g.object(reflect.TypeOf(k.obj))
		props := root["properties"].(map[string]any)
		props["apiVersion"] = map[string]any{"type": "string", "enum": []string{k.apiVersion}}
		props["kind"] = map[string]any{"type": "string", "enum": []string{k.kind}}
		root["required"] = []string{"apiVersion", "kind"}
		root["definitions"] = g.defs
		b, err := json.MarshalIndent(root, "", " ")
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(filepath.Join(out, fileName(k.apiVersion, k.kind)), b, 0o644); err != nil {
			fail(err)
		}
	}
}

// fileName is kubeconform's {{.ResourceKind}}{{.KindSuffix}}.json:
// statefulset-apps-v1.json, service-v1.json,
// networkpolicy-networking-v1.json.
func fileName(apiVersion, kind string) string {
	suffix := ""
	if group, version, ok := strings.Cut(apiVersion, "/"); ok {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + "-" + strings.ToLower(version)
	} else {
		suffix = "-" + strings.ToLower(apiVersion)
	}
	return strings.ToLower(kind) + suffix + ".json"
}

// schema is the schema of a value of type t.
func (g *generator) schema(t reflect.Type) map[string]any {
	if s, ok := special[t]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schema(t.Elem())
		if typ, ok := s["type"].(string); ok {
			c := copyMap(s)
			c["type"] = []string{typ, "null"}
			return c
		}
		return s
	case reflect.Struct:
		if implementsMarshaler(t) {
			fail(fmt.Errorf("%s marshals itself: add it to special", t))
		}
		name := strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // recursion guard
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/definitions/" + name}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": []string{"string", "null"}} // base64
		}
		return map[string]any{"type": []string{"array", "null"}, "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": g.schema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	}
	fail(fmt.Errorf("no schema for %s (%s)", t, t.Kind()))
	return nil
}

// object is a struct's schema: its JSON fields (inlined ones merged), and
// no others.
func (g *generator) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	g.fields(t, props)
	return map[string]any{
		"type":                 []string{"object", "null"},
		"properties":           props,
		"additionalProperties": false,
	}
}

func (g *generator) fields(t reflect.Type, props map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			g.fields(ft, props)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
	}
}

func implementsMarshaler(t reflect.Type) bool {
	m := reflect.TypeFor[json.Marshaler]()
	return t.Implements(m) || reflect.PointerTo(t).Implements(m)
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "k8sschema:", err)
	os.Exit(1)
}
