"""The words an expected file and the metrics share: the comparison operators, the figures a
bound may name as its value, and the metric names.

A leaf module (standard library only, nothing of this package): expfile parses bounds in these
words and metrics computes and checks them, so both depend on this module and not on each other."""

import operator
from collections import OrderedDict

# A bound's OP, in the order messages list them. '!=' is deliberately absent: a bound says which
# side of a value a figure must stay on.
OPS = OrderedDict([
    ('<', operator.lt),
    ('<=', operator.le),
    ('==', operator.eq),
    ('>=', operator.ge),
    ('>', operator.gt),
])

# Figures a case reports about its live objects, usable as a bound's value ('live_bytes * 2').
FIGURES = ('live_objects', 'live_bytes', 'floor_kb')
# The phase they are read from: the live set is complete once everything else has been freed.
FIGURE_PHASE = 'after_free'

# Metrics computed from the RSS a case reports per phase (formulas in metrics.py).
RSS_METRICS = ('retained', 'floor_ratio', 'free_over_floor', 'trim_retained', 'settled_retained',
               'shim_over_trim')
# Metrics read from valgrind memcheck's XML.
MEMCHECK_METRICS = ('definitely_lost_bytes', 'indirectly_lost_bytes', 'possibly_lost_bytes',
                    'still_reachable_bytes', 'still_reachable_blocks', 'definitely_lost_blocks',
                    'indirectly_lost_blocks', 'possibly_lost_blocks', 'errors')
METRIC_NAMES = RSS_METRICS + MEMCHECK_METRICS
