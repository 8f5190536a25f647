package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for SQLite nodes
)

// overlapSQL counts live appointments that overlap an earlier-starting live
// appointment of the same staff member (service time, buffers excluded):
// zero exactly when no staff member is double-booked. A window function
// keeps it O(n log n) rather than a self-join. $1 is a LIKE pattern on
// staff ids, $2 the instant at which holds must still be live.
const overlapSQL = `SELECT staff_id FROM (
	SELECT staff_id, start_at, MAX(end_at) OVER (PARTITION BY staff_id ORDER BY start_at, id
		ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
	FROM appointments
	WHERE staff_id LIKE $1 AND (status = 'confirmed' OR (status = 'held' AND hold_expires_at > $2))
) live WHERE start_at < prev_end`

// Overlap is the database check's answer.
type Overlap struct {
	Count int      // live appointments overlapping another
	Staff []string // the staff members concerned (up to 10)
}

// CountOverlaps runs the overlap query over the appointments of staff
// whose id starts with prefix ("" for all), live at now. databaseURL
// selects PostgreSQL (postgres:// URL, queried with pgx; search_path in
// the URL is honoured); otherwise sqlitePath names the SQLite file.
func CountOverlaps(ctx context.Context, databaseURL, sqlitePath, prefix string, now time.Time) (Overlap, error) {
	pattern := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
	var ids []string
	if databaseURL != "" {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			return Overlap{}, fmt.Errorf("overlap check: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		rows, _ := conn.Query(ctx, overlapSQL, pattern, now.UTC())
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return Overlap{}, fmt.Errorf("overlap check: %w", err)
		}
	} else {
		db, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			return Overlap{}, fmt.Errorf("overlap check: %w", err)
		}
		defer db.Close()
		// SQLite stores instants as Unix microseconds.
		q := strings.NewReplacer("$1", "? ESCAPE '\\'", "$2", "?").Replace(overlapSQL)
		rows, err := db.QueryContext(ctx, q, pattern, now.UnixMicro())
		if err != nil {
			return Overlap{}, fmt.Errorf("overlap check: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return Overlap{}, err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return Overlap{}, fmt.Errorf("overlap check: %w", err)
		}
	}
	o := Overlap{Count: len(ids)}
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] && len(o.Staff) < 10 {
			seen[id] = true
			o.Staff = append(o.Staff, id)
		}
	}
	return o, nil
}
