package lb

// edf is Envoy's earliest-deadline-first scheduler: each entry's deadline
// advances by 1/weight each time it is picked, so over time an entry is
// picked in proportion to its weight, and picks of different entries
// interleave smoothly. Ties go to the entry scheduled first. Not safe for
// concurrent use.
type edf struct {
	now   float64
	order uint64
	heap  []edfEntry
}

type edfEntry struct {
	deadline float64
	order    uint64
	idx      int
}

func (a edfEntry) before(b edfEntry) bool {
	return a.deadline < b.deadline || a.deadline == b.deadline && a.order < b.order
}

// add schedules entry idx with weight w > 0.
func (e *edf) add(idx int, w float64) {
	e.heap = append(e.heap, edfEntry{deadline: e.now + 1/w, order: e.order, idx: idx})
	e.order++
	for i := len(e.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !e.heap[i].before(e.heap[p]) {
			break
		}
		e.heap[i], e.heap[p] = e.heap[p], e.heap[i]
		i = p
	}
}

// top is the entry to pick next; the heap must not be empty.
func (e *edf) top() int { return e.heap[0].idx }

// advance picks the top entry: time moves to its deadline, and it is
// rescheduled with weight w > 0.
func (e *edf) advance(w float64) {
	e.now = e.heap[0].deadline
	e.heap[0].deadline = e.now + 1/w
	e.heap[0].order = e.order
	e.order++
	h := e.heap
	for i := 0; ; {
		m, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].before(h[m]) {
			m = l
		}
		if r < len(h) && h[r].before(h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
