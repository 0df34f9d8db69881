package postgres

// MigrateUpTo makes Open apply the migrations up to version only, to build a
// store as an older Ferry left it.
func MigrateUpTo(version int) Option {
	return func(s *Store) { s.upTo = version }
}
