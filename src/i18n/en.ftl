# kpibot's words in English. Every message here exists in ja.ftl with the same variables
# (src/i18n/tests.rs checks). Code names messages by key; it never writes a sentence.

## Charts and report messages

chart-no-data = No data for { $window }
chart-target = Target
target-line-linear = 🎯 Target { $target } for { $period }: { $to_date } so far, *{ $attainment }* attained · on pace for { $projected } (*{ $pace }*), at the rate of { $elapsed } of { $days } days
target-line-last-year = 🎯 Target { $target } for { $period }: { $to_date } so far, *{ $attainment }* attained · on pace for { $projected } (*{ $pace }*), as the same period grew last year
chart-goal = Goal
chart-other-series = other ({ $count })
chart-more-rows = { $count ->
    [one] … { $count } more row
   *[other] … { $count } more rows
}
headline-latest = Latest
headline-latest-at = Latest ({ $date })
headline-total = Total
headline-average = Average
change-versus = vs { $compared }
alt-series-latest = { $series } { $value } ({ $at })
alt-latest = { $title }. Latest: { $values }
alt-no-data = { $title }: no data
message-change = Change
message-fallback = { $title }: { $headline } — { $window }
message-fallback-change = { $title }: { $headline } ({ $change }) — { $window }
message-fallback-no-data = { $title }: no data for { $window }
message-context = Data: { $window } · Source: `{ $source }` · Refreshed: { $refreshed } · Report: `{ $report }`
message-not-numbers = { $count ->
    [one] { $count } value was not a number (NaN or ∞) and is shown as a gap
   *[other] { $count } values were not numbers (NaN or ∞) and are shown as gaps
}
message-thread-reply = Chart and details: { $report } ({ $slot })
message-private = Only you can see this: this channel may not see { $data }.
message-private-policy = Only you can see this: this channel may not see { $data } (policy `{ $policy }`).

## Metric answers

metric-title-by = { $label } by { $dimension }
metric-title-filter = { $title } ({ $dimension } = { $values })
metric-no-dimension-hint = `{ $metric }` has no dimension `{ $dimension }`. Did you mean `{ $suggestion }`?
metric-no-dimensions = `{ $metric }` cannot be split or filtered
metric-no-dimension-list = `{ $metric }` has no dimension `{ $dimension }`; it has { $dimensions }

## /kpi replies

kpi-help =
    {"*"}kpibot* answers with a chart from the same definitions the scheduled reports use.
    • `/kpi list [tag]`: what you can ask for
    • `/kpi describe <name>`: what a number means, where it comes from, who owns it
    • `/kpi history <report>`: its last scheduled runs, with links to the posts
    • `/kpi alerts`: the alerts firing now that you may see
    • `/kpi follow <question> [daily|weekdays|weekly <day>|monthly <day>] [at HH:MM] [in #channel]`: get it in one direct message at that time, e.g. `/kpi follow active_users last 7 days weekly monday at 8:30`; `/kpi following` lists them, `/kpi unfollow <n>` stops one
    • `/kpi why <metric> [period] [vs previous_year] [by <dimension>]`: which members carried its change, e.g. `/kpi why active_users last 7 days`
    • `/kpi <report> [period]`: a report now, e.g. `/kpi daily_active_users last 7 days`
    • `/kpi <metric> [period] [daily|weekly|monthly] [by <dimension>] [where <dimension>=<value>,… [and …]] [private]`
      e.g. `/kpi active_users last 30 days weekly by role where role=student,teacher`
    Periods: `yesterday`, `today`, `last 30 days`, `last month`, `this week`, `month to date`, `2026-01-01..2026-01-31`, `since 2026-04-01`, `昨日`, `今週`, `先月`, `過去7日`, `過去3ヶ月`.
    Add `private` to see the answer yourself only. The menus under a chart ask again for another period or split, in its thread.
kpi-working = Working on `{ $command }`…
kpi-mistake = { $message }
    Type `/kpi help` for examples.
kpi-not-a-metric = `{ $report }` is a report: it takes only a period (and `private`). Metrics take `by`, `where` and a grain; see `/kpi list`.
kpi-refused = You cannot see `{ $name }` here. Ask its owner, { $owner }, for access.
kpi-failed = Sorry, `{ $name }` failed: { $error }. Its owner is { $owner }.
kpi-internal-error = kpibot hit an internal error while answering
kpi-operators = the bot's operators
kpi-policies-unreadable = kpibot cannot answer right now: a file with data access policies is broken, so who may see what is unknown. The data team has been told; try again once it is fixed.
kpi-not-posted = I could not post the answer here: { $error }
kpi-too-many = { $count ->
    [one] You have asked { $count } question in the last minute, the most kpibot answers per person; please wait a moment and ask again.
   *[other] You have asked { $count } questions in the last minute, the most kpibot answers per person; please wait a moment and ask again.
}
kpi-unknown = I don't know `{ $name }`. Type `/kpi list` to see what you can ask for.
kpi-unknown-hint = I don't know `{ $name }`. Did you mean `{ $suggestion }`? Type `/kpi list` to see all.
kpi-list-metrics = *Metrics*
kpi-list-reports = *Reports*
kpi-list-item = • `{ $name }`: { $label }
kpi-list-item-by = • `{ $name }`: { $label } (by { $dimensions })
kpi-list-no-tag = Nothing is tagged `{ $tag }`. Try `/kpi list`.
kpi-list-empty = No reports or metrics are defined yet.

## /kpi describe

measure-sum = sum of `{ $column }`
measure-rows = number of rows
measure-count = count of `{ $column }`
measure-distinct = number of distinct `{ $column }`
measure-average = average of `{ $column }`
measure-minimum = minimum of `{ $column }`
measure-maximum = maximum of `{ $column }`
measure-ratio = { $numerator } per { $denominator }
interval-days = { $count ->
    [one] 1 day
   *[other] { $count } days
}
interval-weeks = { $count ->
    [one] 1 week
   *[other] { $count } weeks
}
interval-months = { $count ->
    [one] 1 month
   *[other] { $count } months
}
interval-quarters = { $count ->
    [one] 1 quarter
   *[other] { $count } quarters
}
interval-years = { $count ->
    [one] 1 year
   *[other] { $count } years
}
unit-week = week
unit-month = month
unit-quarter = quarter
unit-year = year
measure-window = { $measure } over the { $window } up to each day
measure-to-date = { $measure } from the start of the { $unit } to each day
period-agg-first = ; a week or month shows its first day's value
period-agg-last = ; a week or month shows its last day's value
period-agg-average = ; a week or month shows the average of its days
measure-derived = `{ $expr }`, where { $inputs }
measure-input = `{ $name }` is { $label }
measure-input-offset = `{ $name }` is { $label } { $offset } earlier
describe-metric =
    {"*"}{ $label }* (`{ $name }`, metric)
    { $description }
    • Measure: { $measure }
    • Source: { $sources }
    • Refreshed: { $refreshed }
    • Owner: { $owner }
    • Dimensions: { $dimensions }
    • Who may see it: { $who }
    • SQL (daily):
    { $sql }
describe-documentation = • From dbt's documentation:
describe-documented = {"    "}◦ `{ $name }`: { $description }
describe-source = `{ $table }` (time column `{ $time_column }`)
describe-report =
    {"*"}{ $title }* (`{ $name }`, report)
    { $description }
    • Purpose: { $purpose }
    • Source: `{ $source }`
    • Refreshed: { $refreshed }
    • Owner: { $owner }
    • Default period: { $period }
    • Who may see it: { $who }
describe-not-stated = not stated
describe-no-dimensions = none
describe-dimension = `{ $name }` ({ $label })
who-anyone = anyone in the workspace
who-no-one = no one yet (kpibot's policy is deny and nothing allows it)
who-policy = policy `{ $policy }` on { $data }: { $who }
who-own-list = its own access list: { $who }

## Reading a /kpi command

grammar-unclosed-quote = a quote is not closed: write values with spaces as "Sakura High"
grammar-too-long = that command is longer than { $max } characters
grammar-list-usage = write `list` or `list <tag>`
grammar-describe-usage = write `describe <name>`
grammar-by-needs-dimension = `by` needs a dimension, e.g. `by role`
grammar-one-by = only one `by` per command
grammar-one-period = only one period per command
grammar-not-understood = I did not understand `{ $word }`. After a name, write a period (e.g. `last 30 days`, `先月`), `daily|weekly|monthly`, `by <dimension>`, `where <dimension>=<value>` or `private`
grammar-one-grain = choose one of `{ $first }` and `{ $second }`
grammar-filter-usage = write filters as `where role=student,teacher and school="Sakura High"`
grammar-filter-needs-equals = `{ $dimension }` needs `=`: write filters as `where role=student,teacher and school="Sakura High"`
grammar-filter-needs-value = `{ $dimension }=` needs a value: write filters as `where role=student,teacher and school="Sakura High"`

## Periods

period-unparsable = `{ $text }` is not a period I understand; try `yesterday`, `last 28 days`, `this month`, `last month`, `month to date`, `2026-01-01..2026-01-31` or `since 2026-04-01`
period-zero-length = `{ $text }` must be a positive number of days, weeks or months
period-backwards = the period starts on { $start } but ends earlier, on { $end }
period-bad-date = `{ $text }` is not a date in YYYY-MM-DD form
period-before-earliest = the period { $window } reaches { $date }, before the earliest date kpibot reads (limits.earliest_date); ask for a window inside { $earliest } … { $latest }
period-too-far-ahead = the period { $window } reaches { $date }, too far in the future (limits.latest_days_ahead); ask for a window inside { $earliest } … { $latest }
period-too-long = the period { $window } is { $days } days long; kpibot reads at most { $max_days } days at once (limits.max_window_days)

## Why a run failed (the warehouse's own words follow)

failure-query-rejected = the warehouse rejected the query
failure-query-refused = the warehouse refused to run the query
failure-timeout = the query took too long
failure-unavailable = the warehouse could not be reached
failure-unsupported-type = the query returned a column kpibot cannot chart
failure-too-many-rows = the query returned too many rows
failure-over-budget = the query would exceed a daily warehouse budget
budget-over-person = This question would scan { $estimate }, but you have already used { $spent } of your { $limit } a day (`{ $setting }`). Your budget resets at { $resets }.
budget-over-report = This run of `{ $subject }` would scan { $estimate }, but the report has already used { $spent } of its { $limit } a day (`{ $setting }`). The budget resets at { $resets }.
budget-over-alert = This evaluation of alert `{ $subject }` would scan { $estimate }, but the alert has already used { $spent } of its { $limit } a day (`{ $setting }`). The budget resets at { $resets }.
budget-alone-person = This question alone would scan { $estimate }, more than your { $limit } a day (`{ $setting }`): narrow its period, or ask your data team to raise the budget.
budget-alone-report = One run of `{ $subject }` would scan { $estimate }, more than the report's { $limit } a day (`{ $setting }`): narrow its query, or raise the budget.
budget-alone-alert = One evaluation of alert `{ $subject }` would scan { $estimate }, more than the alert's { $limit } a day (`{ $setting }`): narrow its query, or raise the budget.
history-rows = { $rows ->
    [one] 1 row
   *[other] { $rows } rows
}

## Notices to a report's owner

notice-run-failed = :warning: kpibot could not run *{ $title }* (`{ $report }`) scheduled for { $slot } to { $channel }.
    { $error }
notice-delivery-failed = :warning: kpibot could not deliver *{ $title }* (`{ $report }`) scheduled for { $slot } to { $channel }.
    { $error }
notice-no-channel = (no channel)
notice-warehouse-gave-up = The warehouse stayed unavailable: kpibot tried { $attempts } times over { $seconds } s (scheduler.warehouse_outage_seconds) and gave up on this slot. Re-run it with `kpibot run { $report }` once the warehouse is back.
notice-unconfirmed = :warning: *{ $title }* (`{ $report }`) for { $slot } may or may not have posted: kpibot could not check after { $attempts ->
    [one] { $attempts } try
   *[other] { $attempts } tries
} ({ $error }). Check { $channel } before re-running it.
notice-not-refreshed = :hourglass: *{ $title }* (`{ $report }`) scheduled for { $slot } was not posted to { $channel }: the data is not refreshed yet ({ $reason }).
notice-detail-withheld = the detail is not shown here because it may quote data this channel may not see; an operator finds it with `kpibot history { $report }` and in kpibot's log
notice-held = :no_entry: *{ $title }* (`{ $report }`) scheduled for { $slot } was held, not posted to { $channel }: { $why } Nothing was sent; the next post goes out once access allows it.
held-policies-unreadable = a file under reports/ that may declare data policies cannot be read, so who may see the data cannot be told (see `kpibot check`).
held-policy = data policy `{ $policy }` does not allow { $destination } to see what this query reads.
held-own-list = its own access lists do not include { $destination }.
notice-spec-broken = :x: `{ $file }` has problems; kpibot keeps running its last good version until it is fixed:

## Periods in words

period-yesterday = yesterday
period-today = today
period-last-days = { $count ->
    [1] last day
   *[other] last { $count } days
}
period-last-weeks = { $count ->
    [1] last week
   *[other] last { $count } weeks
}
period-last-months = { $count ->
    [1] last month
   *[other] last { $count } months
}
period-last-quarters = { $count ->
    [1] last quarter
   *[other] last { $count } quarters
}
period-last-years = { $count ->
    [1] last year
   *[other] last { $count } years
}
period-this-week = this week
period-this-month = this month
period-this-quarter = this quarter
period-this-year = this year
period-month-to-date = month to date
period-since = since { $start }
freshness-stale = newest data is { $newest }, expected { $wanted }
freshness-missing = the source holds no data, expected data through { $wanted }

## Slack failures, and what to do about them

pipeline-render-failed = kpibot could not draw the chart of `{ $report }` ({ $detail }): a kpibot bug, not the report's; tell the operators
pipeline-stopped = shaping or drawing the chart of `{ $report }` stopped unexpectedly ({ $detail }): a kpibot bug, not the report's; tell the operators
slack-detail-needs-scope = needs the scope `{ $scope }`
slack-detail-retry-after = Slack asked to wait { $seconds } s
slack-detail-no-answer = no answer within { $ms } ms
slack-detail-no-channel = no channel is named #{ $channel }
slack-detail-lookup-pages = looked back through { $pages } pages of messages without reaching the post's time
slack-detail-lookup-failed = the answer to a post was lost, and looking for the post failed with `{ $code }`
slack-call-failed = Slack { $method } failed with { $code } after { $attempts ->
    [one] { $attempts } attempt
   *[other] { $attempts } attempts
}; to fix: { $advice }
advice-not-in-channel = invite @kpibot to { $channel_name }: type `/invite @kpibot` in { $channel_name }
advice-channel-not-found = check the channel `{ $channel }` in the report's `[[schedule]]`; if { $channel_name } is private, invite @kpibot to it first (the bot cannot see private channels it is not in)
advice-archived = { $channel_name } is archived: unarchive it or point the schedule at another channel
advice-bot-token = set KPIBOT__SLACK__BOT_TOKEN to the Slack app's current `Bot User OAuth Token` (`xoxb-…`); reinstall the app if it was removed
advice-app-token = set KPIBOT__SLACK__APP_TOKEN to the Slack app's current app-level token (`xapp-…`, scope `connections:write`); reinstall the app if it was removed
advice-missing-scope = add the `{ $scope }` scope to the Slack app (OAuth & Permissions) and reinstall it
advice-kpibot-bug = this is a kpibot bug (the message broke Slack's rules); please report it with this error
advice-rate-limited = Slack kept rate-limiting kpibot; spread the reports' schedules over more minutes
advice-unconfirmed = the post may have gone out: check { $channel_name } before re-running the report
advice-unreachable = Slack could not be reached reliably; check the network from the bot to slack.com and Slack's status page
advice-server-errors = Slack's servers kept failing; check status.slack.com and re-run the report
advice-unknown-code = see https://api.slack.com/methods for the meaning of `{ $code }`
delivery-taken-over = not posted: another kpibot process took this slot over while this one was paused; it posts the slot

## Buttons and menus under a chart

action-period = Period
action-by = Split by
action-refresh = Refresh
action-definition = Definition
action-history = History
action-asked-period = { $period }, asked by { $user }
action-asked-by = by { $dimension }, asked by { $user }
action-asked-refresh = refreshed, asked by { $user }
action-outdated = This button belongs to an older post kpibot can no longer read; ask with `/kpi` instead.

## /kpi history

history-heading = { $count ->
    [one] {"*"}{ $title }* (`{ $report }`): the last run
   *[other] {"*"}{ $title }* (`{ $report }`): the last { $count } runs
}
history-none = `{ $report }` has no recorded runs yet.
history-run = • { $slot } — { $state }{ $scanned }{ $link }
history-link = : <{ $url }|post>
history-state-delivered = posted
history-state-failed = failed
history-state-skipped = skipped
history-state-running = running
history-state-claimed = starting
history-unavailable = The run history cannot be read right now: { $error }
history-needs-ledger = Run history is only kept by `kpibot serve` (its run ledger).
history-state-no-data = no data
grammar-history-usage = write `history <report>`
grammar-alerts-usage = write `alerts` on its own

## Weekdays and durations

weekday-mon = Mon
weekday-tue = Tue
weekday-wed = Wed
weekday-thu = Thu
weekday-fri = Fri
weekday-sat = Sat
weekday-sun = Sun
duration-hours-minutes = { $hours }h { $minutes }m
duration-minutes = { $minutes }m

## A result that cannot be charted

shape-missing-column = the query returns no column `{ $column }` named by `chart.{ $key }` (it returns: { $available })
shape-not-numbers = column `{ $column }` (chart.y) holds { $found }, not numbers

## Alerts

alert-fired-header = 🔴 { $title }
alert-fired-lead = { $mentions }{ $count ->
    [one] firing for { $count } value:
   *[other] firing for { $count } values:
}
alert-fired-lead-single = { $mentions }firing:
alert-item = • *{ $instance }*: { $value }{ $against }
alert-item-single = *{ $value }*{ $against }
alert-more = … and { $count } more
alert-no-value = no data
alert-against-threshold = {" "}(threshold { $threshold })
alert-against-earlier = {" "}({ $change } against { $earlier } on { $day })
alert-against-band = {" "}(usual range { $low }–{ $high } over { $weeks } same weekdays)
alert-against-pace-linear = {" "}(on pace for { $pace } of the target { $target } for { $period }: { $to_date } so far, at the rate so far)
alert-against-pace-last-year = {" "}(on pace for { $pace } of the target { $target } for { $period }: { $to_date } so far, as the same period grew last year)
alert-small-print = { $definition } · evaluated { $time } ({ $timezone }) · day judged: { $day } · alert `{ $alert }`
alert-reminder = ⏰ Still firing ({ $time }):
alert-worsened = 📉 Worse ({ $time }):
alert-resolved = ✅ Resolved ({ $time }):
alert-resolved-header = ✅ { $title } — resolved { $time }
alert-still-firing = Resolved: { $resolved }. Still firing: { $firing }.
alert-mute-header = 🔕 { $title }: while the mute window held
alert-mute-fired = • fired: { $instance } { $value } ({ $time })
alert-mute-reminder = • still firing: { $instance } { $value } ({ $time })
alert-mute-worsened = • worse: { $instance } { $value } ({ $time })
alert-mute-resolved = • resolved: { $instance } ({ $time })
alert-fallback = { $title }: { $summary }
alert-problem-withheld = kpibot could not evaluate alert `{ $alert }` ({ $count } value(s)). The detail is not shown here because it may quote data this destination may not see; an operator finds it in kpibot's log and `kpibot alerts`. It is in the "error" state until an evaluation succeeds.
alert-problem = kpibot could not evaluate alert `{ $alert }` ({ $instances }): { $detail }. It is in the "error" state until an evaluation succeeds.
alert-dropped = Alert `{ $alert }` tracks at most { $max } values; { $dropped } more were left out. Narrow it with `where`, or raise its `max_instances`.
alert-chart-title = { $title }
alert-chart-subtitle = { $window } ({ $timezone }) · { $definition }
alert-list-heading = { $count ->
    [one] { $count } alert is firing:
   *[other] { $count } alerts are firing:
}
alert-list-none = No alert you may see is firing.
alert-list-item = • *{ $title }* (`{ $alert }`): { $instances } — since { $since }
alert-def-metric = { $metric }
alert-def-metric-by = { $metric } by { $dimension }
alert-def-where = {" "}where { $dimension } = { $values }
alert-def-report = report { $report }
alert-def-query = its query
alert-def-above = above { $threshold }
alert-def-below = below { $threshold }
alert-def-change-day = { $change } or more against the day before
alert-def-change-week = { $change } or more against the same weekday a week before
alert-def-band = outside mean ± { $sigmas } sd of the same weekday over { $weeks } weeks (at least { $min_weeks })
alert-def-pace = projected to land below { $percent } of its target
alert-def-pace-month = projected to land below { $percent } of its monthly target
alert-def-pace-week = projected to land below { $percent } of its weekly target
alert-def-no-data = no data
alert-def-stale = data older than { $days } day(s)
alert-def-rows = the query returns rows
alert-def-recover = , resolves past { $level }
alert-def-for = , { $count } evaluations in a row
alert-def = { $watched }: { $condition }{ $recover }{ $for }
alert-no-data-detail = no data for the day judged
alert-refused = { $channel } may not see what alert `{ $alert }` watches; post it where the metric's or report's access and the data policies allow
alert-not-posted = kpibot could not post alert `{ $alert }` to { $channel }: { $reason }
alert-missing-metric = the catalog has no metric `{ $metric }` any more (renamed or removed?)
alert-missing-target = metric `{ $metric }` has no one target for this total to pace against any more (was the `[[target]]` removed, or a second one added? name `per`)
alert-pace-no-target = no target for { $period } in { $source }: the period is not judged
alert-pace-bad-target = the target for { $period } in `{ $source }` is not one number above 0 (rows that disagree, or empty, 0 or negative): the period is not judged
alert-missing-report = the catalog has no report `{ $report }` any more (renamed or removed?)
grammar-compare-usage = write `compare` with one of `previous_period`, `previous_week`, `previous_month`, `previous_year` or `none`, or say `year over year` / `month over month`
grammar-why-usage = write `why <metric> [period]`, e.g. `why active_users last 7 days`
grammar-one-compare = only one comparison per command
phrase-two-names = I read two names, `{ $first }` and `{ $second }`: ask about one at a time
phrase-split-needs-by = `{ $word }` is a dimension: write `by { $word }` to split by it
phrase-needs-name = `{ $text }` names no report or metric: which one? e.g. `/kpi active_users last month`; `/kpi list` shows them all
readback-line = Read as: { $parts }
readback-by = by { $dimension }
readback-daily = daily
readback-weekly = weekly
readback-monthly = monthly
readback-previous_period = vs the period before
readback-previous_week = vs a week earlier
readback-previous_month = vs the month before
readback-previous_year = vs a year earlier
readback-private = only you
kpi-choose-heading = That can be read more than one way. Which did you mean?
kpi-choose-command = • { $label }: `/kpi { $command }`

## /kpi why: explanations

why-title = Why { $label } changed
why-headline = *{ $before }* → *{ $after }* ({ $change }) · { $asked } vs { $compared } ({ $timezone })
why-subtitle = { $compared } → { $asked }: each bar is one member's part of the change
why-no-change = Nothing changed between the two windows, so there is nothing to explain.
why-best = *By { $dimension }* (explanatory power { $power }):
why-share-of-drop = { $member } { $part }, { $share } of the drop
why-share-of-rise = { $member } { $part }, { $share } of the rise
why-against-drop = { $member } { $part }, against the drop ({ $share })
why-against-rise = { $member } { $part }, against the rise ({ $share })
why-rate-mix = {" "}(rate { $rate }, mix { $mix })
why-others = { $count ->
    [one] { $count } other: { $part }
   *[other] { $count } others: { $part }
}
why-others-label = { $count ->
    [one] { $count } other
   *[other] { $count } others
}
why-other-dimension = By { $dimension }: { $driver } (explanatory power { $power })
why-other-dimensions = *Other splits*
why-how-sum = Each part is that member's own change; the parts add up exactly to the total change. Splits are ranked by how unlike the whole their members moved (0% when every member moved in proportion to its size).
why-how-ratio = Each part splits into *rate* (the member's own ratio moved) and *mix* (its share of the denominator moved), centred on the mean ratio; rate and mix over all members add up exactly to the ratio's change.
why-sql = The query that reproduces it:
why-null-member = (no value)
why-series = Change
why-alt = Waterfall of { $label }: { $before } to { $after }; parts: { $parts }
why-not-a-metric = `{ $name }` is a report without a catalog metric, so its change cannot be split into parts. Ask `/kpi why` about one of its metrics; see `/kpi list`.
why-cannot = `{ $name }` cannot be explained: { $why }
why-no-visible-dimension = `{ $name }` has no dimension you may see here to explain its change by.
why-no-comparison = `{ $name }` is asked with `compare none`: an explanation needs a window to compare with.
why-error-not-additive = `{ $name }` is not a sum, a count, an average or a ratio of those over one table, so its change does not split into its members' parts
why-error-no-dimensions = `{ $name }` has no dimension to split its change by
why-error-overlapping = the two windows overlap ({ $asked } and { $compared }); compare with a window before it, e.g. `vs previous_period`
why-error-no-denominator = { $window ->
    [comparison] the ratio has no value in the comparison window (its denominator adds up to 0 there)
   *[other] the ratio has no value in the asked window (its denominator adds up to 0 there)
}
why-driver = Driver: { $driver }
action-why = Why?
action-asked-why = why it changed, asked by { $user }

## Following

grammar-follow-usage = write `follow <question> [daily|weekdays|weekly <day>|monthly <day>] [at HH:MM] [in #channel]`, e.g. `follow active_users last 7 days weekly monday at 8:30`
grammar-follow-one-cadence = say when only once: `daily`, `weekdays`, `weekly <day>` or `monthly <day>`
grammar-follow-one-time = say the time only once
grammar-follow-time = write the time as `at 8:30` (24-hour clock)
grammar-following-usage = write `following` on its own
grammar-unfollow-usage = write `unfollow <number>` (from `/kpi following`) or `unfollow <question>`
cadence-daily = every day
cadence-weekdays = every weekday
cadence-weekly = every { $day }
cadence-monthly = on day { $day } of every month
follow-when = { $cadence } at { $time } ({ $timezone })
follow-needs-bot = Following needs the running bot and its ledger (`kpibot serve`).
follow-done = Following `{ $question }`: { $when }, in a direct message. Next: { $next }.
    `/kpi following` lists what you follow; `/kpi unfollow { $number }` stops this one.
follow-done-channel = This channel follows `{ $question }`: { $when }. Next: { $next }.
    `/kpi following` lists what you follow; `/kpi unfollow { $number }` stops this one.
follow-refused = You cannot follow `{ $name }`: you may not see it. Ask its owner, { $owner }, for access.
follow-channel-refused = This channel cannot follow `{ $name }`: not everyone here may see it. Follow it yourself instead (`/kpi follow …` without `in`), or ask its owner, { $owner }.
follow-channel-here = A channel can follow only from inside it: type the command in { $channel }.
follow-too-many = You follow { $max } questions already, the most allowed. Stop one first (`/kpi following`, then `/kpi unfollow <number>`).
follow-too-many-total = kpibot keeps { $max } follows at most, and has that many. Ask the bot's operators.
follow-failed = Could not follow it: { $error }
following-none = You follow nothing yet. Try `/kpi follow active_users last 7 days`.
following-heading = {"*"}What you follow*
following-line = { $number }. `{ $question }` — { $when }{ $place }
following-in = {" "}in <#{ $channel }>
following-paused = {" "}— paused: { $reason }
following-next = next { $next }
unfollow-done = Stopped following `{ $question }`.
unfollow-unknown = You do not follow `{ $which }`. `/kpi following` lists what you do.
digest-heading = Your KPIs — { $date }
digest-unfollow = Unfollow
digest-footer = You follow these with `/kpi follow`. `/kpi following` lists them; the Unfollow button stops one.
digest-paused = `{ $question }` is paused: { $reason }
digest-paused-refused = you may no longer see it. Ask its owner, { $owner }, for access; it resumes by itself once you may.
digest-paused-channel = not everyone in this channel may see it any more. Follow it yourself instead, or ask its owner.
digest-paused-gone = its report or metric was renamed or removed. Follow it again under its new name (`/kpi list`).
digest-not-computed = `{ $question }` could not be computed this time: { $reason }
unfollow-button-done = Stopped following `{ $question }`; it will not be in your next digest.
action-follow = Follow
home-heading = Your KPIs
home-no-follows = You follow nothing yet. Press Follow on anything below (or under any chart kpibot posts), or type `/kpi follow active_users last 7 days`: it arrives in one direct message every morning, on your own clock.
home-catalog-heading = What you can follow
home-entry = {"*"}{ $title }* `{ $name }`
    { $description }
    Source: { $source } · Refreshed: { $refreshed } · Owner: { $owner }
home-more = … and { $count } more: `/kpi list` shows them all.
follow-too-many-channel = This channel follows { $max } questions already, the most allowed. Stop one first (`/kpi following`, then `/kpi unfollow <number>`).
home-more-follows = … and { $count } more: `/kpi following` lists them all.

## kpibot studio, the authors' local web page
studio-title = kpibot studio
studio-skip = Skip to the content
studio-search = Search
studio-search-label = Find a report, metric, policy or alert
studio-reports = Reports
studio-metrics = Metrics
studio-policies = Policies
studio-alerts = Alerts
studio-broken = Files with problems
studio-owner = Owner
studio-source = Source
studio-refreshed = Refreshed
studio-purpose = Purpose
studio-description = Description
studio-next-posts = Next posts
studio-sql = SQL
studio-reads = Reads
studio-covered-by = Policies that cover it
studio-message = The Slack message
studio-chart = The chart
studio-data = The data behind it
studio-query = The query
studio-period = Period
studio-language = Language
studio-apply = Show
studio-diagnostics = Problems
studio-no-diagnostics = No problems.
studio-last-good = The last good preview, from before this edit:
studio-live = The page updates when a file under reports/ is saved.
studio-none = None.
studio-not-found = Nothing named { $name }
studio-catalog = Catalog
studio-table = Table
studio-columns = Columns
studio-allowed = Allowed
studio-condition = Condition
studio-query-stats = { $rows } rows in { $ms } ms, window { $window }
studio-bytes = { $bytes } scanned
studio-rows-more = … and { $count } more rows
backtest-title = backtest: { $title }
backtest-subtitle = { $from } – { $to } ({ $timezone }), firing days shaded
studio-backtest = Backtest
studio-backtest-range = Days judged
studio-backtest-from = From
studio-backtest-to = To
studio-backtest-none = It would not have fired on these days.
studio-backtest-summary = { $evaluations } evaluations on its cron, against the warehouse as it is now
studio-evaluated = Evaluated
studio-day = Day
studio-instance = Value of
studio-change = Change
studio-value = Value
studio-against = Against
studio-fired = Fired
studio-resolved = Resolved
studio-runs = Recent runs
studio-runs-none = The ledger has no run of this report yet.
studio-runs-no-ledger = No ledger to read ({ $why }).
studio-post = Post
studio-slot = Slot
studio-state = State
studio-rows = Rows
studio-open-in-slack = Open in Slack
studio-bad-date = `{ $word }` is not a day: write it as YYYY-MM-DD.
studio-range-too-long = { $from } to { $to } is longer than { $days } days (studio.backtest_days_max).
studio-warehouse = Warehouse
studio-rounds = Recent evaluations
studio-rounds-none = The ledger has no evaluation of this alert yet.
studio-firing = Firing
studio-range-backwards = { $from } is after { $to }: the first day comes first.
