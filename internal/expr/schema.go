package expr

import (
	"sort"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// The names of the object types that expressions see. They exist only for
// the type checker: expressions cannot construct them.
const (
	releaseType     = "ferry.Release"
	artifactType    = "ferry.Artifact"
	pipelineType    = "ferry.Pipeline"
	environmentType = "ferry.Environment"
	promotionType   = "ferry.Promotion"
	historyType     = "ferry.HistoryItem"
)

// schema declares the fields of every object type. The type checker rejects
// a field that is not listed here, so a typo such as release.versoin fails when
// a pipeline is applied rather than when a promotion runs. At run time the
// objects are plain maps built by Input.
var schema = map[string]map[string]*types.Type{
	releaseType: {
		"id":        types.StringType,
		"version":   types.StringType,
		"pipeline":  types.StringType,
		"artifacts": types.NewListType(types.NewObjectType(artifactType)),
		"commit":    types.StringType,
		"source":    types.StringType,
		"buildUrl":  types.StringType,
		"labels":    types.NewMapType(types.StringType, types.StringType),
		"createdAt": types.TimestampType,
		"createdBy": types.StringType,
	},
	artifactType: {
		"name":   types.StringType,
		"uri":    types.StringType,
		"digest": types.StringType,
	},
	pipelineType: {
		"name":     types.StringType,
		"revision": types.IntType,
	},
	environmentType: {
		"name":  types.StringType,
		"after": types.NewListType(types.StringType),
	},
	promotionType: {
		"id":        types.StringType,
		"actor":     types.StringType,
		"reason":    types.StringType,
		"kind":      types.StringType,
		"forced":    types.BoolType,
		"expedited": types.BoolType,
	},
	historyType: {
		"environment": types.StringType,
		"state":       types.StringType,
		"kind":        types.StringType,
		"finishedAt":  types.NewNullableType(types.TimestampType),
		"actor":       types.StringType,
	},
}

// variables declares the top-level variables of every expression.
func variables() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable("release", types.NewObjectType(releaseType)),
		cel.Variable("pipeline", types.NewObjectType(pipelineType)),
		cel.Variable("environment", types.NewObjectType(environmentType)),
		cel.Variable("promotion", types.NewObjectType(promotionType)),
		cel.Variable("now", types.TimestampType),
		cel.Variable("history", types.NewListType(types.NewObjectType(historyType))),
	}
}

// schemaTypes adds the schema's field declarations to the environment's type
// provider.
func schemaTypes() cel.EnvOption {
	return func(env *cel.Env) (*cel.Env, error) {
		return cel.CustomTypeProvider(&provider{Provider: env.CELTypeProvider()})(env)
	}
}

// provider answers lookups for the schema's object types and defers
// everything else to the provider it wraps. Compile rejects expressions that
// construct values of these types.
type provider struct {
	types.Provider
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(structType string) (*types.Type, bool) {
	if _, ok := schema[structType]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(structType)), true
	}
	return p.Provider.FindStructType(structType)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(structType string) ([]string, bool) {
	fields, ok := schema[structType]
	if !ok {
		return p.Provider.FindStructFieldNames(structType)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, true
}

// FindStructFieldType implements types.Provider. The returned field type has
// no getter, so the interpreter reads the field as a map key.
func (p *provider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	fields, ok := schema[structType]
	if !ok {
		return p.Provider.FindStructFieldType(structType, fieldName)
	}
	t, ok := fields[fieldName]
	if !ok {
		return nil, false
	}
	return &types.FieldType{Type: t}, true
}
