package forward

import (
	"fmt"
	"sync"
)

// Pool is a fixed set of workers that tracks share to spread the
// deliveries of one packet when they have many subscribers. The track's
// own goroutine takes one share and waits for the others, so every
// subscriber still gets its packets in order. Close the pool after the
// tracks that use it.
type Pool struct {
	workers int
	jobs    chan *fanJob
	wg      sync.WaitGroup // the workers
	once    sync.Once
}

type fanJob struct {
	t      *Track
	fc     *fanCtx
	set    *subSet
	lo, hi int
	pkt    []byte
	p      *pktInfo
	done   *sync.WaitGroup
}

// NewPool starts workers goroutines (at least 1).
func NewPool(workers int) (*Pool, error) {
	if workers < 1 {
		return nil, fmt.Errorf("%w: %d workers", ErrInvalidConfig, workers)
	}
	p := &Pool{workers: workers, jobs: make(chan *fanJob, 4*workers)}
	p.wg.Add(workers)
	for range workers {
		go p.run()
	}
	return p, nil
}

func (p *Pool) run() {
	defer p.wg.Done()
	for j := range p.jobs {
		j.fc.fanout(j.t, j.set, j.lo, j.hi, j.pkt, j.p)
		j.done.Done()
	}
}

// Close stops the workers and waits for them.
func (p *Pool) Close() error {
	p.once.Do(func() { close(p.jobs) })
	p.wg.Wait()
	return nil
}

// parallel is a track's share of a pool: one scratch context and job per
// worker, owned by the exclusive section.
type parallel struct {
	ctxs []*fanCtx
	jobs []fanJob
	done sync.WaitGroup
}

func (pp *parallel) use(t *Track, set *subSet) bool {
	return t.cfg.Pool != nil && len(set.entries) >= t.cfg.ParallelThreshold
}

// fanoutParallel cuts the subscribers into one share per worker plus one
// for the calling goroutine.
func (t *Track) fanoutParallel(set *subSet, pkt []byte, p *pktInfo) {
	pool := t.cfg.Pool
	if t.par.ctxs == nil {
		for range pool.workers {
			t.par.ctxs = append(t.par.ctxs, newFanCtx(t.cfg.MaxPacketSize))
		}
		t.par.jobs = make([]fanJob, pool.workers)
	}
	n := len(set.entries)
	share := (n + pool.workers) / (pool.workers + 1)
	lo := share
	t.par.done.Add(pool.workers)
	for i := range pool.workers {
		hi := min(lo+share, n)
		if i == pool.workers-1 {
			hi = n
		}
		j := &t.par.jobs[i]
		*j = fanJob{t: t, fc: t.par.ctxs[i], set: set, lo: lo, hi: hi, pkt: pkt, p: p, done: &t.par.done}
		pool.jobs <- j
		lo = hi
	}
	t.main.fanout(t, set, 0, share, pkt, p)
	t.par.done.Wait()
}
