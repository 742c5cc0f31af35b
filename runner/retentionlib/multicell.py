"""One way to run a program in several cells, for `watch` (any program) and `compare` (the built-in
cases): the order of the runs, the discarded warm-up, and the time figures with their spread.

Why the order matters: on this kind of VM the first process to touch memory after others freed
theirs pays a page-fault warm-up, and two runs of the same binary differ by 15-30 %. A single run
per cell, cells one after the other, turns that into a fake difference between cells (measured:
glibc 2.5 s, glibc+trim 0.35 s for the same allocations, in one invocation). So:
  - one warm-up run first (the first cell's), discarded;
  - then `rounds` rounds, every cell once per round, each round starting one cell further on
    (no cell always runs first or right after the same neighbour);
  - a cell's time figure is the median over the rounds of its ratio to the reference cell *of the
    same round* (neighbours in time share the machine's state), with the range of those ratios;
  - a ratio whose range includes 1.0 is no resolved difference, and is shown as such.
"""

from collections import OrderedDict


def schedule(cells, rounds, warmup=True):
    """The runs in order: [(cell, round)], round -1 for the warm-up (the first cell's)."""
    cells = list(cells)
    out = []
    if warmup and cells:
        out.append((cells[0], -1))
    for r in range(rounds):
        k = r % len(cells) if cells else 0
        for cell in cells[k:] + cells[:k]:
            out.append((cell, r))
    return out


def run_rounds(cells, rounds, run_one, warmup=True, progress=None):
    """Runs run_one(cell, round, done) for every entry of schedule(); done is the OrderedDict
    cell -> result of the runs of this round so far (what a cell's reference needs). Returns
    OrderedDict cell -> [result per round] (the warm-up's result is dropped)."""
    out = OrderedDict((c, []) for c in cells)
    this_round = {}
    for cell, r in schedule(cells, rounds, warmup):
        done = this_round.setdefault(r, OrderedDict())
        res = run_one(cell, r, done)
        done[cell] = res
        if r >= 0:
            out[cell].append(res)
        if progress:
            progress(cell, r)
    return out


def median(values):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    n = len(vals)
    mid = n // 2
    return float(vals[mid]) if n % 2 else (vals[mid - 1] + vals[mid]) / 2.0


class Ratio(object):
    """A cell's figure over the reference's, round by round: median, min, max, rounds."""

    def __init__(self, ratios):
        self.ratios = [r for r in ratios if r is not None]
        self.median = median(self.ratios)
        self.lo = min(self.ratios) if self.ratios else None
        self.hi = max(self.ratios) if self.ratios else None

    @property
    def n(self):
        return len(self.ratios)

    def overlaps_one(self):
        """True when the spread includes 1.0: no difference from the reference resolved. A
        single ratio has no spread, and nothing can be told from it."""
        if self.median is None:
            return None
        if self.n < 2:
            return True
        return self.lo <= 1.0 <= self.hi

    def text(self, spec='%.2f'):
        """'0.52 [0.48-0.57]'; '~1.03 [0.95-1.10]' when the spread includes 1.0; '1.03 (1 run)'
        for a single run; '-' without a figure."""
        if self.median is None:
            return '-'
        if self.n < 2:
            return (spec + ' (1 run)') % self.median
        body = (spec + ' [' + spec + '-' + spec + ']') % (self.median, self.lo, self.hi)
        return ('~' + body) if self.overlaps_one() else body

    def to_json(self):
        d = OrderedDict()
        d['median'] = self.median
        d['min'] = self.lo
        d['max'] = self.hi
        d['rounds'] = self.n
        d['spread_includes_1'] = self.overlaps_one()
        d['per_round'] = self.ratios
        return d


def ratio_per_round(results, reference, figure):
    """Ratio of figure(result) to figure(reference's result) round by round; results and
    reference are the lists run_rounds gives (one entry per round, in round order)."""
    out = []
    for mine, ref in zip(results, reference):
        a, b = figure(mine), figure(ref)
        out.append(float(a) / b if a is not None and b else None)
    return Ratio(out)


RATIO_NOTE = ('~: within noise, the spread over the rounds includes 1.0 (no difference from the '
              'reference resolved); [min-max]: the ratios of the single rounds')
