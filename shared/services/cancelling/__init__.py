"""An organiser cancels an event (docs/cancelling-events.md).

`cancel.py`: the request, one compare-and-set on the event (status, version + 1, reason, time and
the `event.cancelled` domain event in one commit), answered at once; `fanout.py`: the background
work, in bounded batches through Cloud Tasks and resumed by the sweep, that cancels every pending
booking and refunds every confirmed one, each exactly once; `notices.py`: the buyer's e-mail.
"""
