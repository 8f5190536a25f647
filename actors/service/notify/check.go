package notify

import (
	"errors"
	"fmt"
	"strings"
	"text/template/parse"

	"github.com/spa-engine/spa/actors/service/fault"
)

// The check of a template against its kind's typed declaration
// (templates.go): a walk over text/template's parse tree that allows only
// prints of declared variables and conditions on them fitting their type,
// and that adds the channel's escaper to every print.

// escapeFunc is the function Compile appends to every {{.Var}}.
const escapeFunc = "_escape"

type checker struct {
	kind Kind
	tree *parse.Tree
	err  string // the first refusal
}

func (c *checker) fail(format string, args ...any) {
	if c.err == "" {
		c.err = fmt.Sprintf(format, args...)
	}
}

func (c *checker) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode, *parse.CommentNode:
		case *parse.ActionNode:
			c.print(n)
		case *parse.IfNode:
			c.condition(n.Pipe)
			c.list(n.List)
			c.list(n.ElseList)
		default:
			c.fail("%s is not allowed: a template prints {{.Variable}} and chooses with {{if}} … {{else}} … {{end}}", clip(n.String()))
		}
	}
}

// print allows {{.Var}} alone and adds the escaper to it.
func (c *checker) print(n *parse.ActionNode) {
	p := n.Pipe
	if len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		c.fail("%s: only a variable may be printed, as {{.Name}}", clip(n.String()))
		return
	}
	f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok {
		c.fail("%s: only a variable may be printed, as {{.Name}}", clip(n.String()))
		return
	}
	if _, ok := c.field(f); !ok {
		return
	}
	esc := parse.NewIdentifier(escapeFunc).SetTree(c.tree).SetPos(f.Pos)
	p.Cmds = append(p.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: f.Pos, Args: []parse.Node{esc}})
}

// field is the declared variable f names, or a refusal naming it.
func (c *checker) field(f *parse.FieldNode) (Var, bool) {
	name := f.Ident[0]
	v, ok := lookupVar(c.kind, name)
	if !ok {
		c.fail("unknown variable .%s: %s has %s", name, c.kind, varNames(c.kind))
		return v, false
	}
	if len(f.Ident) > 1 {
		c.fail("variable .%s is a %s: it has no field .%s", name, v.Type, strings.Join(f.Ident[1:], "."))
		return v, false
	}
	return v, true
}

// comparisons are the functions a condition may use with a variable and a
// literal.
var comparisons = map[string]bool{"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true}

// condition allows {{if .Var}}, {{if not .Var}} and {{if op .Var literal}}
// (or the literal first) where the variable's type allows op and the
// literal is of its type.
func (c *checker) condition(p *parse.PipeNode) {
	if len(p.Decl) > 0 || len(p.Cmds) != 1 {
		c.fail("{{if %s}}: a condition is .Var, not .Var or a comparison of .Var with a value", clip(p.String()))
		return
	}
	args := p.Cmds[0].Args
	if f, ok := args[0].(*parse.FieldNode); ok && len(args) == 1 {
		c.field(f)
		return
	}
	fn, ok := args[0].(*parse.IdentifierNode)
	if !ok {
		c.fail("{{if %s}}: a condition is .Var, not .Var or a comparison of .Var with a value", clip(p.String()))
		return
	}
	if fn.Ident == "not" && len(args) == 2 {
		if f, ok := args[1].(*parse.FieldNode); ok {
			c.field(f)
			return
		}
	}
	if !comparisons[fn.Ident] || len(args) != 3 {
		c.fail("{{if %s}}: a condition is .Var, not .Var or a comparison (eq, ne, lt, le, gt, ge) of .Var with a value", clip(p.String()))
		return
	}
	f, lit := args[1], args[2]
	if _, ok := f.(*parse.FieldNode); !ok {
		f, lit = lit, f
	}
	field, ok := f.(*parse.FieldNode)
	if !ok {
		c.fail("{{if %s}}: compare a variable (.Name) with a value", clip(p.String()))
		return
	}
	v, ok := c.field(field)
	if !ok {
		return
	}
	switch v.Type {
	case TypeText:
		if _, ok := lit.(*parse.StringNode); !ok || (fn.Ident != "eq" && fn.Ident != "ne") {
			c.fail("variable .%s is text: it can only be compared with eq or ne to a quoted text", v.Name)
		}
	case TypeNumber:
		if n, ok := lit.(*parse.NumberNode); !ok || !n.IsInt {
			c.fail("variable .%s is a number: it can only be compared to an integer", v.Name)
		}
	default:
		c.fail("variable .%s is a %s, already formatted: it cannot be compared, only printed or tested with {{if .%s}}", v.Name, v.Type, v.Name)
	}
}

// clip keeps a node's text short in an error message.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// describe is err with a fault's field messages, for the errors of the
// embedded templates (which have no HTTP answer to carry the details).
func describe(err error) string {
	var fe *fault.Error
	if !errors.As(err, &fe) {
		return err.Error()
	}
	msg := fe.Message
	if d, ok := fe.Details.(map[string]any); ok {
		if fs, ok := d["fields"].([]fault.FieldError); ok {
			for _, f := range fs {
				msg += "; " + f.Field + " " + f.Message
			}
		}
	}
	return msg
}
