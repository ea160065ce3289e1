package budget

// The zone of a budget's period must load on hosts without a zoneinfo
// database (small container images), so the database is embedded.
import _ "time/tzdata"
