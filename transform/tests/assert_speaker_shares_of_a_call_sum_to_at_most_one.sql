-- The speakers of a call cannot together talk longer than the call: their shares of it sum to at most 1, and their
-- shares of its talk to exactly 1. Returns the calls where that fails.
select call_id, sum(share_of_call) as share_of_call, sum(share_of_talk) as share_of_talk
from {{ ref('fct_call_speakers') }}
group by call_id
having sum(share_of_call) > 1 + 1e-9 or abs(sum(share_of_talk) - 1) > 1e-9
