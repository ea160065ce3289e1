package control

import (
	"net/http"

	"github.com/edge-sync/edge-sync/internal/units"
)

// This file serves transport.budget.status, .set and .reset
// (docs/control-api.md#transportbudgetstatus, docs/budget.md).

// Budget command names.
const (
	CmdBudgetStatus = "transport.budget.status"
	CmdBudgetSet    = "transport.budget.set"
	CmdBudgetReset  = "transport.budget.reset"
)

// BudgetSetRequest is transport.budget.set's request: the endpoint's new
// allowance per period, a size such as "60GiB".
type BudgetSetRequest struct {
	Endpoint  string `json:"endpoint,omitempty"`
	Allowance string `json:"allowance"`
}

func (s *Server) budgetStatus(_ *http.Request, req EndpointRequest) (any, error) {
	return s.a.Budget(req.Endpoint)
}

func (s *Server) budgetSet(_ *http.Request, req BudgetSetRequest) (any, error) {
	if req.Allowance == "" {
		return nil, badRequest(`"allowance" is required: the bytes a period allows, such as "60GiB"`)
	}
	n, err := units.ParseSize(req.Allowance)
	if err != nil || n <= 0 {
		return nil, badRequest("allowance %q: want a positive size such as 60GiB", req.Allowance)
	}
	return s.a.SetBudget(req.Endpoint, n)
}

func (s *Server) budgetReset(_ *http.Request, req EndpointRequest) (any, error) {
	return s.a.ResetBudget(req.Endpoint)
}
