# kpibot のことば（日本語）。ここにあるメッセージはすべて en.ftl にも同じ変数で存在します
# （src/i18n/tests.rs が確認します）。コードはキーでメッセージを指し、文章は書きません。

## グラフとレポートのメッセージ

chart-no-data = { $window } のデータはありません
chart-target = 目標
target-line-linear = 🎯 目標 { $target }（{ $period }）: 現在 { $to_date }、達成率 *{ $attainment }* · 着地見込み { $projected }（*{ $pace }*、{ $days }日中{ $elapsed }日のペースから）
target-line-last-year = 🎯 目標 { $target }（{ $period }）: 現在 { $to_date }、達成率 *{ $attainment }* · 着地見込み { $projected }（*{ $pace }*、昨年同期の伸び方から）
chart-goal = 目標
chart-other-series = その他（{ $count }）
chart-more-rows = …ほか { $count } 行
headline-latest = 最新
headline-latest-at = 最新（{ $date }）
headline-total = 合計
headline-average = 平均
change-versus = { $compared }比
alt-series-latest = { $series } { $value }（{ $at }）
alt-latest = { $title }。最新値: { $values }
alt-no-data = { $title }: データなし
message-change = 増減
message-fallback = { $title }: { $headline } — { $window }
message-fallback-change = { $title }: { $headline }（{ $change }）— { $window }
message-fallback-no-data = { $title }: { $window } のデータはありません
message-context = 期間: { $window } · データ元: `{ $source }` · 更新: { $refreshed } · レポート: `{ $report }`
message-not-numbers = { $count } 件の値が数値ではない（NaN または ∞）ため、欠損として表示しています
message-thread-reply = グラフと詳細: { $report }（{ $slot }）
message-private = この回答はあなたにだけ表示されています。このチャンネルでは { $data } を閲覧できません。
message-private-policy = この回答はあなたにだけ表示されています。このチャンネルでは { $data } を閲覧できません（ポリシー `{ $policy }`）。

## メトリクスの回答

metric-title-by = { $label }（{ $dimension }別）
metric-title-filter = { $title }（{ $dimension } = { $values }）
metric-no-dimension-hint = `{ $metric }` にディメンション `{ $dimension }` はありません。`{ $suggestion }` のことですか？
metric-no-dimensions = `{ $metric }` は分割も絞り込みもできません
metric-no-dimension-list = `{ $metric }` にディメンション `{ $dimension }` はありません。使えるのは { $dimensions } です

## /kpi の返答

kpi-help =
    {"*"}kpibot* は、定期レポートと同じ定義からグラフで答えます。
    • `/kpi 一覧 [タグ]`: 聞けるものの一覧
    • `/kpi 説明 <名前>`: 数字の意味、データ元、担当者
    • `/kpi 履歴 <レポート>`: 直近の定期実行と投稿へのリンク
    • `/kpi アラート`: 閲覧できる発生中のアラート
    • `/kpi フォロー <質問> [毎日|平日|毎週月曜|毎月1日] [9時] [で #チャンネル]`: 決まった時刻にダイレクトメッセージでまとめて届けます。例: `/kpi フォロー アクティブユーザー 過去7日 毎週月曜 8時30分`。`/kpi フォロー一覧` で一覧、`/kpi フォロー解除 <番号>` で解除
    • `/kpi なぜ <メトリクス> [期間] [比較 previous_year] [by <ディメンション>]`: 変化の内訳（どの値がどれだけ動かしたか）。例: `/kpi なぜ active_users 過去7日`
    • `/kpi <レポート> [期間]`: レポートを今すぐ表示。例: `/kpi daily_active_users 過去7日`
    • `/kpi <メトリクス> [期間] [日次|週次|月次] [by <ディメンション>] [where <ディメンション>=<値>,… [and …]] [非公開]`
      例: `/kpi active_users 先月 週次 by role`、`/kpi active_users 過去30日 where role=student,teacher`
    期間: `昨日`、`今日`、`今週`、`先週`、`今月`、`先月`、`今年`、`過去7日`、`過去2週間`、`過去3ヶ月`、`2026-01-01..2026-01-31`、`since 2026-04-01`（英語の `last 30 days` なども使えます）。
    `非公開` を付けると、回答はあなたにだけ表示されます。グラフの下のメニューから、別の期間や分割でスレッドに聞き直せます。
kpi-working = `{ $command }` を集計しています…
kpi-mistake = { $message }
    使い方の例は `/kpi help` で表示できます。
kpi-not-a-metric = `{ $report }` はレポートです。指定できるのは期間（と `非公開`）だけです。`by`・`where`・粒度はメトリクスに指定します。`/kpi 一覧` をご覧ください。
kpi-refused = ここでは `{ $name }` を閲覧できません。担当者の { $owner } に権限を依頼してください。
kpi-failed = 申し訳ありません。`{ $name }` の集計に失敗しました: { $error }。担当者は { $owner } です。
kpi-internal-error = 回答中に kpibot の内部エラーが発生しました
kpi-operators = ボットの運用担当者
kpi-policies-unreadable = 現在お答えできません。データ閲覧ポリシーのファイルが壊れているため、誰が何を見られるか判断できません。データチームには連絡済みです。修正後にもう一度お試しください。
kpi-not-posted = 回答をここに投稿できませんでした: { $error }
kpi-too-many = 直近1分間のあなたの質問が { $count } 件に達しました（1人あたりの上限）。少し待ってからもう一度お試しください。
kpi-unknown = `{ $name }` は見つかりません。聞けるものは `/kpi 一覧` で確認できます。
kpi-unknown-hint = `{ $name }` は見つかりません。`{ $suggestion }` のことですか？ すべて見るには `/kpi 一覧` と入力してください。
kpi-list-metrics = *メトリクス*
kpi-list-reports = *レポート*
kpi-list-item = • `{ $name }`: { $label }
kpi-list-item-by = • `{ $name }`: { $label }（分割: { $dimensions }）
kpi-list-no-tag = タグ `{ $tag }` の付いたものはありません。`/kpi 一覧` をお試しください。
kpi-list-empty = レポートもメトリクスもまだ定義されていません。

## /kpi 説明

measure-sum = `{ $column }` の合計
measure-rows = 行数
measure-count = `{ $column }` の件数
measure-distinct = `{ $column }` のユニーク数
measure-average = `{ $column }` の平均
measure-minimum = `{ $column }` の最小値
measure-maximum = `{ $column }` の最大値
measure-ratio = { $denominator } あたりの { $numerator }
interval-days = { $count }日
interval-weeks = { $count }週
interval-months = { $count }か月
interval-quarters = { $count }四半期
interval-years = { $count }年
unit-week = 週
unit-month = 月
unit-quarter = 四半期
unit-year = 年
measure-window = 各日までの{ $window }間の{ $measure }
measure-to-date = { $unit }初から各日までの{ $measure }
period-agg-first = （週・月はその最初の日の値）
period-agg-last = （週・月はその最後の日の値）
period-agg-average = （週・月は各日の平均）
measure-derived = `{ $expr }`（{ $inputs }）
measure-input = `{ $name }` は{ $label }
measure-input-offset = `{ $name }` は{ $offset }前の{ $label }
describe-metric =
    {"*"}{ $label }*（`{ $name }`、メトリクス）
    { $description }
    • 指標: { $measure }
    • データ元: { $sources }
    • 更新: { $refreshed }
    • 担当者: { $owner }
    • ディメンション: { $dimensions }
    • 閲覧できる人: { $who }
    • SQL（日次）:
    { $sql }
describe-documentation = • dbtのドキュメントより:
describe-documented = {"    "}◦ `{ $name }`: { $description }
describe-source = `{ $table }`（時刻列 `{ $time_column }`）
describe-report =
    {"*"}{ $title }*（`{ $name }`、レポート）
    { $description }
    • 目的: { $purpose }
    • データ元: `{ $source }`
    • 更新: { $refreshed }
    • 担当者: { $owner }
    • 既定の期間: { $period }
    • 閲覧できる人: { $who }
describe-not-stated = 記載なし
describe-no-dimensions = なし
describe-dimension = `{ $name }`（{ $label }）
who-anyone = ワークスペースの全員
who-no-one = まだ誰も閲覧できません（kpibot のポリシーが `deny` で、許可する設定がありません）
who-policy = { $data } のポリシー `{ $policy }`: { $who }
who-own-list = このレポート自身の閲覧リスト: { $who }

## /kpi コマンドの読み取り

grammar-unclosed-quote = 引用符が閉じていません。空白を含む値は "さくら高校" のように書いてください
grammar-too-long = コマンドが { $max } 文字を超えています
grammar-list-usage = `一覧` または `一覧 <タグ>` と書いてください
grammar-describe-usage = `説明 <名前>` と書いてください
grammar-by-needs-dimension = `by` の後にディメンションを書いてください。例: `by role`
grammar-one-by = `by` は1つのコマンドに1つだけです
grammar-one-period = 期間は1つのコマンドに1つだけです
grammar-not-understood = `{ $word }` が分かりませんでした。名前の後には、期間（例: `過去30日`、`先月`）、`日次|週次|月次`、`by <ディメンション>`、`where <ディメンション>=<値>`、`非公開` のいずれかを書いてください
grammar-one-grain = `{ $first }` と `{ $second }` のどちらか1つを選んでください
grammar-filter-usage = 絞り込みは `where role=student,teacher and school="さくら高校"` のように書いてください
grammar-filter-needs-equals = `{ $dimension }` の後に `=` が必要です。絞り込みは `where role=student,teacher and school="さくら高校"` のように書いてください
grammar-filter-needs-value = `{ $dimension }=` の後に値が必要です。絞り込みは `where role=student,teacher and school="さくら高校"` のように書いてください

## 期間

period-unparsable = `{ $text }` は期間として読めません。`昨日`、`過去28日`、`今月`、`先月`、`2026-01-01..2026-01-31`、`since 2026-04-01` などをお試しください
period-zero-length = `{ $text }` には1以上の日数・週数・月数を指定してください
period-backwards = 期間の開始日 { $start } が終了日 { $end } より後になっています
period-bad-date = `{ $text }` は YYYY-MM-DD 形式の日付ではありません
period-before-earliest = 期間 { $window } は { $date } を含みますが、これは kpibot が読む最も古い日付（limits.earliest_date）より前です。{ $earliest } 〜 { $latest } の範囲で指定してください
period-too-far-ahead = 期間 { $window } は { $date } を含みますが、先の日付すぎます（limits.latest_days_ahead）。{ $earliest } 〜 { $latest } の範囲で指定してください
period-too-long = 期間 { $window } は { $days } 日間あります。kpibot が一度に読めるのは { $max_days } 日までです（limits.max_window_days）

## 実行に失敗した理由（続けてデータウェアハウス自身のメッセージ）

failure-query-rejected = データウェアハウスがクエリを受け付けませんでした
failure-query-refused = データウェアハウスがクエリの実行を拒否しました
failure-timeout = クエリに時間がかかりすぎました
failure-unavailable = データウェアハウスに接続できませんでした
failure-unsupported-type = kpibot がグラフにできない列をクエリが返しました
failure-too-many-rows = クエリの結果の行数が多すぎます
failure-over-budget = クエリが 1 日のウェアハウス予算を超えます
budget-over-person = この質問は { $estimate } を読み込みますが、あなたは 1 日の予算 { $limit }（`{ $setting }`）のうち { $spent } をすでに使っています。予算は { $resets } にリセットされます。
budget-over-report = `{ $subject }` の今回の実行は { $estimate } を読み込みますが、このレポートは 1 日の予算 { $limit }（`{ $setting }`）のうち { $spent } をすでに使っています。予算は { $resets } にリセットされます。
budget-over-alert = アラート `{ $subject }` の今回の評価は { $estimate } を読み込みますが、このアラートは 1 日の予算 { $limit }（`{ $setting }`）のうち { $spent } をすでに使っています。予算は { $resets } にリセットされます。
budget-alone-person = この質問だけで { $estimate } を読み込み、1 日の予算 { $limit }（`{ $setting }`）を超えます。期間を絞るか、データチームに予算の引き上げを依頼してください。
budget-alone-report = `{ $subject }` の 1 回の実行だけで { $estimate } を読み込み、このレポートの 1 日の予算 { $limit }（`{ $setting }`）を超えます。クエリを絞り込むか、予算を引き上げてください。
budget-alone-alert = アラート `{ $subject }` の 1 回の評価だけで { $estimate } を読み込み、このアラートの 1 日の予算 { $limit }（`{ $setting }`）を超えます。クエリを絞り込むか、予算を引き上げてください。
history-rows = { $rows } 行

## レポート担当者への通知

notice-run-failed = :warning: { $slot } に { $channel } へ予定していた *{ $title }*（`{ $report }`）を kpibot が実行できませんでした。
    { $error }
notice-delivery-failed = :warning: { $slot } に { $channel } へ予定していた *{ $title }*（`{ $report }`）を kpibot が投稿できませんでした。
    { $error }
notice-no-channel = （チャンネルなし）
notice-warehouse-gave-up = データウェアハウスに接続できない状態が続いたため、kpibot は { $seconds } 秒間に { $attempts } 回試したうえでこの回をあきらめました（scheduler.warehouse_outage_seconds）。復旧後に `kpibot run { $report }` で再実行してください。
notice-unconfirmed = :warning: { $slot } の *{ $title }*（`{ $report }`）は投稿済みかどうか確認できません。{ $attempts } 回確認を試みましたが失敗しました（{ $error }）。再実行する前に { $channel } を確認してください。
notice-not-refreshed = :hourglass: { $slot } に予定していた *{ $title }*（`{ $report }`）は { $channel } に投稿していません。データがまだ更新されていません（{ $reason }）。
notice-detail-withheld = 詳細にはこのチャンネルで見てはいけないデータが含まれる可能性があるため表示しません。運用担当者は `kpibot history { $report }` と kpibot のログで確認できます
notice-held = :no_entry: { $slot } に予定していた *{ $title }*（`{ $report }`）は { $channel } に投稿せず保留しました: { $why } 何も送っていません。アクセスが許されれば次の回から投稿します。
held-policies-unreadable = データポリシーを含むかもしれない reports/ のファイルを読めないため、誰がデータを見てよいか判断できません（`kpibot check` を参照）。
held-policy = データポリシー `{ $policy }` は { $destination } にこのクエリが読むデータを見ることを許していません。
held-own-list = レポート自身のアクセス一覧に { $destination } が含まれていません。
notice-spec-broken = :x: `{ $file }` に問題があります。修正されるまで、kpibot は最後に正常だった版で動き続けます:

## 期間のことば

period-yesterday = 昨日
period-today = 今日
period-last-days = 過去{ $count }日
period-last-weeks = { $count ->
    [1] 先週
   *[other] 過去{ $count }週間
}
period-last-months = { $count ->
    [1] 先月
   *[other] 過去{ $count }ヶ月
}
period-last-quarters = { $count ->
    [1] 前四半期
   *[other] 過去{ $count }四半期
}
period-last-years = { $count ->
    [1] 昨年
   *[other] 過去{ $count }年
}
period-this-week = 今週
period-this-month = 今月
period-this-quarter = 今四半期
period-this-year = 今年
period-month-to-date = 今月（昨日まで）
period-since = { $start }以降
freshness-stale = 最新のデータは { $newest } で、{ $wanted } までのデータが必要です
freshness-missing = データ元にデータがありません。{ $wanted } までのデータが必要です

## Slack の失敗と対処

pipeline-render-failed = kpibot が `{ $report }` のグラフを描けませんでした（{ $detail }）。レポートではなく kpibot の不具合です。運用担当に知らせてください
pipeline-stopped = `{ $report }` のグラフの整形・描画が途中で止まりました（{ $detail }）。レポートではなく kpibot の不具合です。運用担当に知らせてください
slack-detail-needs-scope = スコープ `{ $scope }` が必要です
slack-detail-retry-after = Slack から { $seconds } 秒待つよう求められました
slack-detail-no-answer = { $ms } ミリ秒以内に応答がありませんでした
slack-detail-no-channel = #{ $channel } という名前のチャンネルはありません
slack-detail-lookup-pages = メッセージを { $pages } ページさかのぼりましたが、投稿の時刻まで届きませんでした
slack-detail-lookup-failed = 投稿への応答が失われ、投稿を探す処理も `{ $code }` で失敗しました
slack-call-failed = Slack の { $method } を { $attempts } 回試しましたが、{ $code } で失敗しました。対処: { $advice }
advice-not-in-channel = @kpibot を { $channel_name } に招待してください。{ $channel_name } で `/invite @kpibot` と入力します
advice-channel-not-found = レポートの `[[schedule]]` にあるチャンネル `{ $channel }` を確認してください。{ $channel_name } が非公開チャンネルなら、先に @kpibot を招待してください（ボットは参加していない非公開チャンネルを見られません）
advice-archived = { $channel_name } はアーカイブされています。アーカイブを解除するか、スケジュールの投稿先を別のチャンネルにしてください
advice-bot-token = KPIBOT__SLACK__BOT_TOKEN に Slack アプリの現在の `Bot User OAuth Token`（`xoxb-…`）を設定してください。アプリが削除されている場合は再インストールしてください
advice-app-token = KPIBOT__SLACK__APP_TOKEN に Slack アプリの現在のアプリレベルトークン（`xapp-…`、スコープ `connections:write`）を設定してください。アプリが削除されている場合は再インストールしてください
advice-missing-scope = Slack アプリに `{ $scope }` スコープを追加し（OAuth & Permissions）、再インストールしてください
advice-kpibot-bug = kpibot の不具合です（メッセージが Slack の規則に反しました）。このエラーを添えて報告してください
advice-rate-limited = Slack のレート制限が続きました。レポートのスケジュールを複数の時刻に分散してください
advice-unconfirmed = 投稿済みの可能性があります。レポートを再実行する前に { $channel_name } を確認してください
advice-unreachable = Slack に安定して接続できませんでした。ボットから slack.com へのネットワークと Slack のステータスページを確認してください
advice-server-errors = Slack のサーバーで失敗が続きました。status.slack.com を確認してから、レポートを再実行してください
advice-unknown-code = `{ $code }` の意味は https://api.slack.com/methods を参照してください
delivery-taken-over = 投稿していません。この処理が停止している間に別の kpibot がこの回を引き継ぎ、そちらが投稿します

## グラフの下のボタンとメニュー

action-period = 期間
action-by = 分割
action-refresh = 再集計
action-definition = 定義
action-history = 履歴
action-asked-period = { $period }（{ $user } さんのリクエスト）
action-asked-by = { $dimension }別（{ $user } さんのリクエスト）
action-asked-refresh = 最新の数字（{ $user } さんのリクエスト）
action-outdated = このボタンは古い投稿のもので、kpibot が読み取れません。`/kpi` で聞き直してください。

## /kpi 履歴

history-heading = *{ $title }*（`{ $report }`）: 直近 { $count } 回の実行
history-none = `{ $report }` の実行記録はまだありません。
history-run = • { $slot } — { $state }{ $scanned }{ $link }
history-link = : <{ $url }|投稿>
history-state-delivered = 投稿済み
history-state-failed = 失敗
history-state-skipped = スキップ
history-state-running = 実行中
history-state-claimed = 開始待ち
history-unavailable = 実行履歴を今は読み取れません: { $error }
history-needs-ledger = 実行履歴は `kpibot serve`（実行台帳）でのみ記録されます。
history-state-no-data = データなし
grammar-history-usage = `履歴 <レポート>` と書いてください
grammar-alerts-usage = `アラート` だけを書いてください

## 曜日と時間

weekday-mon = 月
weekday-tue = 火
weekday-wed = 水
weekday-thu = 木
weekday-fri = 金
weekday-sat = 土
weekday-sun = 日
duration-hours-minutes = { $hours }時間{ $minutes }分
duration-minutes = { $minutes }分

## グラフにできない結果

shape-missing-column = `chart.{ $key }` に指定された列 `{ $column }` をクエリが返していません（返している列: { $available }）
shape-not-numbers = 列 `{ $column }`（chart.y）の値は { $found } で、数値ではありません

## アラート

alert-fired-header = 🔴 { $title }
alert-fired-lead = { $mentions }{ $count }件の値でアラート発生:
alert-fired-lead-single = { $mentions }アラート発生:
alert-item = • *{ $instance }*: { $value }{ $against }
alert-item-single = *{ $value }*{ $against }
alert-more = …ほか{ $count }件
alert-no-value = データなし
alert-against-threshold = （しきい値 { $threshold }）
alert-against-earlier = （{ $day }の{ $earlier }に対して{ $change }）
alert-against-band = （過去{ $weeks }週の同じ曜日からの通常範囲 { $low }〜{ $high }）
alert-against-pace-linear = （目標 { $target }（{ $period }）に対する着地見込み { $pace }: 現在 { $to_date }、これまでのペースから）
alert-against-pace-last-year = （目標 { $target }（{ $period }）に対する着地見込み { $pace }: 現在 { $to_date }、昨年同期の伸び方から）
alert-small-print = { $definition } · 評価 { $time }（{ $timezone }） · 判定日: { $day } · アラート `{ $alert }`
alert-reminder = ⏰ 継続中（{ $time }）:
alert-worsened = 📉 悪化（{ $time }）:
alert-resolved = ✅ 解消（{ $time }）:
alert-resolved-header = ✅ { $title } — { $time }に解消
alert-still-firing = 解消: { $resolved }。継続中: { $firing }。
alert-mute-header = 🔕 { $title }: ミュート中の出来事
alert-mute-fired = • 発生: { $instance } { $value }（{ $time }）
alert-mute-reminder = • 継続中: { $instance } { $value }（{ $time }）
alert-mute-worsened = • 悪化: { $instance } { $value }（{ $time }）
alert-mute-resolved = • 解消: { $instance }（{ $time }）
alert-fallback = { $title }: { $summary }
alert-problem-withheld = アラート `{ $alert }` を評価できませんでした（{ $count } 件）。詳細にはここで見てはいけないデータが含まれる可能性があるため表示しません。運用担当者は kpibot のログと `kpibot alerts` で確認できます。評価が成功するまで「エラー」状態です。
alert-problem = アラート `{ $alert }`（{ $instances }）を評価できませんでした: { $detail }。評価が成功するまで「エラー」状態です。
alert-dropped = アラート `{ $alert }` が追跡できる値は最大{ $max }件です。ほか{ $dropped }件は対象外になりました。`where` で絞り込むか、`max_instances` を増やしてください。
alert-chart-title = { $title }
alert-chart-subtitle = { $window }（{ $timezone }） · { $definition }
alert-list-heading = 発生中のアラート（{ $count }件）:
alert-list-none = 閲覧できる発生中のアラートはありません。
alert-list-item = • *{ $title }*（`{ $alert }`）: { $instances } — { $since }から
alert-def-metric = { $metric }
alert-def-metric-by = { $metric }（{ $dimension }別）
alert-def-where = {" "}{ $dimension } = { $values } に限定
alert-def-report = レポート { $report }
alert-def-query = 専用クエリ
alert-def-above = { $threshold }を超える
alert-def-below = { $threshold }を下回る
alert-def-change-day = 前日比 { $change } 以上
alert-def-change-week = 前週同曜日比 { $change } 以上
alert-def-band = 過去{ $weeks }週の同じ曜日の平均±{ $sigmas }σの範囲外（最低{ $min_weeks }週）
alert-def-pace = 着地見込みが目標の{ $percent }を下回る
alert-def-pace-month = 着地見込みが月間目標の{ $percent }を下回る
alert-def-pace-week = 着地見込みが週間目標の{ $percent }を下回る
alert-def-no-data = データなし
alert-def-stale = データが{ $days }日より古い
alert-def-rows = クエリが行を返す
alert-def-recover = 、{ $level }で解消
alert-def-for = 、{ $count }回連続
alert-def = { $watched }: { $condition }{ $recover }{ $for }
alert-no-data-detail = 判定日のデータがありません
alert-refused = { $channel } はアラート `{ $alert }` が監視するデータを閲覧できません。メトリクスやレポートのアクセス設定とデータポリシーが許す投稿先にしてください
alert-not-posted = アラート `{ $alert }` を { $channel } に投稿できませんでした: { $reason }
alert-missing-metric = カタログにメトリクス `{ $metric }` がありません（名前の変更か削除？）
alert-missing-target = メトリクス `{ $metric }` に、このアラートが比べる目標が一つに定まりません（`[[target]]` が削除されたか、二つ以上ありませんか。二つ以上なら `per` を指定してください）
alert-pace-no-target = { $period }の目標が { $source } にありません: この期間は判定しません
alert-pace-bad-target = `{ $source }` の{ $period }の目標が 0 より大きい一つの数ではありません（食い違う行、空、0 または負の値）: この期間は判定しません
alert-missing-report = カタログにレポート `{ $report }` がありません（名前の変更か削除？）
grammar-compare-usage = `比較` の後には `previous_period`、`previous_week`、`previous_month`、`previous_year`、`none` のいずれかを書くか、`前年同月比`・`前月比` のように書いてください
grammar-why-usage = `なぜ <メトリクス> [期間]` と書いてください。例: `なぜ active_users 過去7日`
grammar-one-compare = 比較は1つのコマンドに1つだけです
phrase-two-names = `{ $first }` と `{ $second }` の2つの名前があります。1つずつ聞いてください
phrase-split-needs-by = `{ $word }` はディメンションです。分けるには `{ $word }別` と書いてください
phrase-needs-name = `{ $text }` にはレポートや指標の名前がありません。どれですか？ 例: `/kpi アクティブユーザー 先月`。`/kpi 一覧` ですべて見られます
readback-line = 読み取り: { $parts }
readback-by = { $dimension }別
readback-daily = 日次
readback-weekly = 週次
readback-monthly = 月次
readback-previous_period = 前期間比
readback-previous_week = 前週比
readback-previous_month = 前月比
readback-previous_year = 前年同期比
readback-private = 自分だけ
kpi-choose-heading = 複数の意味に読めます。どれのことですか？
kpi-choose-command = • { $label }: `/kpi { $command }`

## /kpi why: explanations

why-title = { $label } が変わった理由
why-headline = *{ $before }* → *{ $after }*（{ $change }）· { $asked } と { $compared } の比較（{ $timezone }）
why-subtitle = { $compared } → { $asked }: 各棒は変化のうちその値の寄与分
why-no-change = 2つの期間で変化がないため、説明することはありません。
why-best = *{ $dimension }別*（説明力 { $power }）:
why-share-of-drop = { $member } { $part }（減少の { $share }）
why-share-of-rise = { $member } { $part }（増加の { $share }）
why-against-drop = { $member } { $part }（減少とは逆向き、{ $share }）
why-against-rise = { $member } { $part }（増加とは逆向き、{ $share }）
why-rate-mix = {" "}（率 { $rate }、構成 { $mix }）
why-others = その他 { $count } 件: { $part }
why-others-label = その他 { $count } 件
why-other-dimension = { $dimension }別: { $driver }（説明力 { $power }）
why-other-dimensions = *ほかの分割*
why-how-sum = 各寄与はその値自身の変化で、合計するとちょうど全体の変化になります。分割は、値の動きが全体とどれだけ異なるかで順位付けしています（どの値も規模に比例して動いたときは 0%）。
why-how-ratio = 各寄与は *率*（その値自身の比率の変化）と *構成*（分母に占める割合の変化）に分かれ、平均比率を中心に計算しています。すべての値の率と構成を合計すると、ちょうど比率の変化になります。
why-sql = 再現するクエリ:
why-null-member = （値なし）
why-series = 変化
why-alt = { $label } のウォーターフォール: { $before } から { $after }。内訳: { $parts }
why-not-a-metric = `{ $name }` はカタログのメトリクスを持たないレポートのため、変化を内訳に分けられません。そのメトリクスについて `/kpi なぜ` と聞いてください（`/kpi 一覧` 参照）。
why-cannot = `{ $name }` の変化は説明できません: { $why }
why-no-visible-dimension = `{ $name }` には、ここであなたが見られる分割がないため、変化を説明できません。
why-no-comparison = `{ $name }` は `比較 none` で聞かれています。説明には比較する期間が必要です。
why-error-not-additive = `{ $name }` は1つのテーブルの合計・件数・平均・比率ではないため、変化を値ごとの寄与に分けられません
why-error-no-dimensions = `{ $name }` には変化を分ける分割（ディメンション）がありません
why-error-overlapping = 2つの期間（{ $asked } と { $compared }）が重なっています。`比較 previous_period` のように前の期間と比べてください
why-error-no-denominator = { $window ->
    [comparison] 比較期間では分母の合計が 0 のため、比率の値がありません
   *[other] 指定期間では分母の合計が 0 のため、比率の値がありません
}
why-driver = 要因: { $driver }
action-why = なぜ？
action-asked-why = 変化の理由（{ $user } さんのリクエスト）

## Following

grammar-follow-usage = `フォロー <質問> [毎日|平日|毎週月曜|毎月1日] [9時] [で #チャンネル]` と書いてください。例: `フォロー アクティブユーザー 過去7日 毎週月曜 8時30分`
grammar-follow-one-cadence = 頻度（`毎日`・`平日`・`毎週月曜`・`毎月1日`）は1つだけ指定してください
grammar-follow-one-time = 時刻は1つだけ指定してください
grammar-follow-time = 時刻は `9時`、`9時30分`、`9:30` のように書いてください
grammar-following-usage = `フォロー一覧` だけを書いてください
grammar-unfollow-usage = `フォロー解除 <番号>`（`/kpi フォロー一覧` の番号）か `フォロー解除 <質問>` と書いてください
cadence-daily = 毎日
cadence-weekdays = 平日
cadence-weekly = 毎週{ $day }曜
cadence-monthly = 毎月{ $day }日
follow-when = { $cadence } { $time }（{ $timezone }）
follow-needs-bot = フォローには稼働中のボットと台帳が必要です（`kpibot serve`）。
follow-done = `{ $question }` をフォローしました: { $when } にダイレクトメッセージで届けます。次回: { $next }。
    `/kpi フォロー一覧` で一覧、`/kpi フォロー解除 { $number }` で解除できます。
follow-done-channel = このチャンネルで `{ $question }` をフォローしました: { $when }。次回: { $next }。
    `/kpi フォロー一覧` で一覧、`/kpi フォロー解除 { $number }` で解除できます。
follow-refused = `{ $name }` はフォローできません: 閲覧権限がありません。担当者の { $owner } に権限を依頼してください。
follow-channel-refused = このチャンネルでは `{ $name }` をフォローできません: 閲覧できない人がいます。ご自身でフォローするか（`で` を付けずに `/kpi フォロー …`）、担当者の { $owner } にご相談ください。
follow-channel-here = チャンネルのフォローはそのチャンネルの中から行ってください: { $channel } でコマンドを入力してください。
follow-too-many = すでに上限の { $max } 件をフォローしています。先に1件解除してください（`/kpi フォロー一覧` → `/kpi フォロー解除 <番号>`）。
follow-too-many-total = kpibot のフォローは全体で { $max } 件までで、上限に達しています。ボットの運用担当者にご相談ください。
follow-failed = フォローできませんでした: { $error }
following-none = まだ何もフォローしていません。例: `/kpi フォロー アクティブユーザー 過去7日`
following-heading = {"*"}フォロー一覧*
following-line = { $number }. `{ $question }` — { $when }{ $place }
following-in = {" "}（<#{ $channel }>）
following-paused = {" "}— 停止中: { $reason }
following-next = 次回 { $next }
unfollow-done = `{ $question }` のフォローを解除しました。
unfollow-unknown = `{ $which }` はフォローしていません。`/kpi フォロー一覧` をご覧ください。
digest-heading = フォロー中のKPI — { $date }
digest-unfollow = フォロー解除
digest-footer = `/kpi フォロー` でフォローした質問です。`/kpi フォロー一覧` で一覧、「フォロー解除」ボタンで解除できます。
digest-paused = `{ $question }` は停止中です: { $reason }
digest-paused-refused = 閲覧権限がなくなりました。担当者の { $owner } に権限を依頼してください。権限が戻れば自動で再開します。
digest-paused-channel = このチャンネルの全員が閲覧できるものではなくなりました。ご自身でフォローするか、担当者にご相談ください。
digest-paused-gone = レポートまたはメトリクスの名前が変わったか、削除されました。新しい名前でフォローし直してください（`/kpi 一覧`）。
digest-not-computed = `{ $question }` は今回集計できませんでした: { $reason }
unfollow-button-done = `{ $question }` のフォローを解除しました。次回のまとめからは届きません。
action-follow = フォロー
home-heading = フォロー中のKPI
home-no-follows = まだ何もフォローしていません。下の一覧（または kpibot のグラフの下）の「フォロー」を押すか、`/kpi フォロー アクティブユーザー 過去7日` と入力してください。毎朝（あなたのタイムゾーンで）ダイレクトメッセージでまとめて届きます。
home-catalog-heading = フォローできるもの
home-entry = {"*"}{ $title }* `{ $name }`
    { $description }
    データ元: { $source } · 更新: { $refreshed } · 担当: { $owner }
home-more = …ほか { $count } 件は `/kpi 一覧` で表示できます。
follow-too-many-channel = このチャンネルはすでに上限の { $max } 件をフォローしています。先に1件解除してください（`/kpi フォロー一覧` → `/kpi フォロー解除 <番号>`）。
home-more-follows = …ほか { $count } 件は `/kpi フォロー一覧` で表示できます。

## kpibot studio（レポート作者向けのローカルページ）
studio-title = kpibot スタジオ
studio-skip = 本文へ移動
studio-search = 検索
studio-search-label = レポート・指標・ポリシー・アラートを探す
studio-reports = レポート
studio-metrics = 指標
studio-policies = ポリシー
studio-alerts = アラート
studio-broken = 問題のあるファイル
studio-owner = オーナー
studio-source = データソース
studio-refreshed = 更新
studio-purpose = 目的
studio-description = 説明
studio-next-posts = 次の投稿
studio-sql = クエリ
studio-reads = 読むもの
studio-covered-by = 対象となるポリシー
studio-message = Slack のメッセージ
studio-chart = グラフ
studio-data = 元のデータ
studio-query = クエリの実行
studio-period = 期間
studio-language = 言語
studio-apply = 表示
studio-diagnostics = 問題
studio-no-diagnostics = 問題はありません。
studio-last-good = この編集の前の、最後に正しく表示できたプレビュー:
studio-live = reports/ のファイルを保存するとページが更新されます。
studio-none = ありません。
studio-not-found = { $name } は見つかりません
studio-catalog = カタログ
studio-table = テーブル
studio-columns = 列
studio-allowed = 許可
studio-condition = 条件
studio-query-stats = { $rows } 行、{ $ms } ミリ秒、期間 { $window }
studio-bytes = { $bytes } をスキャン
studio-rows-more = …ほか { $count } 行
backtest-title = バックテスト: { $title }
backtest-subtitle = { $from }〜{ $to }（{ $timezone }）、発火中の日を網掛け
studio-backtest = バックテスト
studio-backtest-range = 判定する日
studio-backtest-from = 開始日
studio-backtest-to = 終了日
studio-backtest-none = この期間には発火しませんでした。
studio-backtest-summary = cron どおりに { $evaluations } 回判定（ウェアハウスの現在のデータで）
studio-evaluated = 判定時刻
studio-day = 日付
studio-instance = 対象
studio-change = 変化
studio-value = 値
studio-against = 比較対象
studio-fired = 発火
studio-resolved = 解消
studio-runs = 最近の実行
studio-runs-none = このレポートの実行はまだ記録されていません。
studio-runs-no-ledger = 台帳を読めません（{ $why }）。
studio-post = 投稿
studio-slot = 予定時刻
studio-state = 状態
studio-rows = 行数
studio-open-in-slack = Slack で開く
studio-bad-date = `{ $word }` は日付ではありません。YYYY-MM-DD の形で書いてください。
studio-range-too-long = { $from }〜{ $to } は { $days } 日を超えています（studio.backtest_days_max）。
studio-warehouse = ウェアハウス
studio-rounds = 最近の判定
studio-rounds-none = このアラートの判定はまだ記録されていません。
studio-firing = 発火中
studio-range-backwards = { $from } が { $to } より後です。開始日を先にしてください。
