"""Polling REST price sources on a clock: the rate limiter, the tick scheduler and the
source's kept HTTP client. What to ask and how to read the answer is the source's
(`marketstream/sources/`); when and how often is here."""
