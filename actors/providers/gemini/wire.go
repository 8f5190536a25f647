package gemini

import "encoding/json"

// Wire types of generateContent (external-apis.md §4), JSON names as in
// go-genai's types.go. Only what the bot uses is declared.
type (
	// Request is a generateContent body.
	Request struct {
		SystemInstruction *Content          `json:"systemInstruction,omitempty"`
		Contents          []Content         `json:"contents"`
		Tools             []Tool            `json:"tools,omitempty"`
		ToolConfig        *ToolConfig       `json:"toolConfig,omitempty"`
		GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
	}
	// Content is one turn: role "user" or "model" and its parts.
	Content struct {
		Role  string `json:"role,omitempty"`
		Parts []Part `json:"parts"`
	}
	// Part is text, a function call the model made, or our answer to
	// one. ThoughtSignature is opaque: a model part that carries it must
	// be sent back with it unchanged, or Gemini 3 answers 400.
	Part struct {
		Text             string            `json:"text,omitempty"`
		Thought          bool              `json:"thought,omitempty"`
		ThoughtSignature string            `json:"thoughtSignature,omitempty"`
		FunctionCall     *FunctionCall     `json:"functionCall,omitempty"`
		FunctionResponse *FunctionResponse `json:"functionResponse,omitempty"`
	}
	// FunctionCall is the model asking to run a declared function.
	FunctionCall struct {
		ID   string          `json:"id,omitempty"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args,omitempty"`
	}
	// FunctionResponse is what the function answered.
	FunctionResponse struct {
		ID       string          `json:"id,omitempty"`
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	}
	// Tool declares functions the model may call.
	Tool struct {
		FunctionDeclarations []FunctionDeclaration `json:"functionDeclarations"`
	}
	// FunctionDeclaration names a function and its arguments' JSON Schema
	// (parametersJsonSchema takes standard JSON Schema).
	FunctionDeclaration struct {
		Name                 string          `json:"name"`
		Description          string          `json:"description"`
		ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
	}
	// ToolConfig restricts function calling.
	ToolConfig struct {
		FunctionCallingConfig FunctionCallingConfig `json:"functionCallingConfig"`
	}
	// FunctionCallingConfig: Mode AUTO, ANY or NONE; AllowedFunctionNames
	// with ANY.
	FunctionCallingConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	}
	// GenerationConfig bounds the answer.
	GenerationConfig struct {
		Temperature     *float64 `json:"temperature,omitempty"`
		MaxOutputTokens int      `json:"maxOutputTokens,omitempty"`
	}

	// Response is a generateContent reply.
	Response struct {
		Candidates     []Candidate     `json:"candidates"`
		UsageMetadata  UsageMetadata   `json:"usageMetadata"`
		PromptFeedback *PromptFeedback `json:"promptFeedback,omitempty"`
		ModelVersion   string          `json:"modelVersion,omitempty"`
		ResponseID     string          `json:"responseId,omitempty"`
	}
	// Candidate is one answer.
	Candidate struct {
		Content      Content `json:"content"`
		FinishReason string  `json:"finishReason"`
		Index        int     `json:"index"`
	}
	// UsageMetadata counts tokens.
	UsageMetadata struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		ThoughtsTokenCount   int `json:"thoughtsTokenCount"`
		TotalTokenCount      int `json:"totalTokenCount"`
	}
	// PromptFeedback says why a prompt was blocked (no candidates then).
	PromptFeedback struct {
		BlockReason string `json:"blockReason"`
	}
)

// Text joins the first candidate's text parts, skipping thoughts.
func (r *Response) Text() string {
	if len(r.Candidates) == 0 {
		return ""
	}
	var s string
	for _, p := range r.Candidates[0].Content.Parts {
		if !p.Thought && p.FunctionCall == nil {
			s += p.Text
		}
	}
	return s
}

// Calls returns the first candidate's function calls, in order.
func (r *Response) Calls() []FunctionCall {
	if len(r.Candidates) == 0 {
		return nil
	}
	var out []FunctionCall
	for _, p := range r.Candidates[0].Content.Parts {
		if p.FunctionCall != nil {
			out = append(out, *p.FunctionCall)
		}
	}
	return out
}
