package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// DeviceMap is a JSON column: login id -> Device. A nil map is stored as
// NULL and reads back empty.
type DeviceMap map[string]Device

// Value implements driver.Valuer.
func (m DeviceMap) Value() (driver.Value, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(map[string]Device(m))
	if err != nil {
		return nil, fmt.Errorf("encode devices: %w", err)
	}
	return string(b), nil
}

// Scan implements sql.Scanner.
func (m *DeviceMap) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*m = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan devices: unsupported type %T", src)
	}
	if len(b) == 0 {
		*m = nil
		return nil
	}
	out := DeviceMap{}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("decode devices: %w", err)
	}
	*m = out
	return nil
}
