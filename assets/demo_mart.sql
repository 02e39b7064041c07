-- kpibot demo mart: a school learning platform's mart layer, deterministic.
--
-- Same data on every machine and every run: all "noise" is integer arithmetic on the
-- date and the row's dimensions, never random(). The only input is the variable
-- `mart_end` (the last day with data: yesterday in the bot's timezone), set by kpibot
-- before this script runs. The data starts on 1 January two years before `mart_end`.
--
-- Shape: weekday/weekend rhythm, Japanese school holidays (spring break, Golden Week,
-- summer, year end), steady growth, and a little noise.

CREATE SCHEMA IF NOT EXISTS mart;

CREATE TEMP MACRO kp_noise(a, b) AS
    (((((a::BIGINT * 1103515245 + b::BIGINT * 12345 + 12345) % 2147483648) * 1103515245 + 12345) % 2147483648) / 2147483648.0);

-- Share of school activity on a day (1.0 = a normal school day).
CREATE TEMP MACRO kp_school_factor(d) AS (
    CASE
        WHEN strftime(d, '%m-%d') >= '12-29' OR strftime(d, '%m-%d') <= '01-03' THEN 0.18
        WHEN strftime(d, '%m-%d') >= '12-25' OR strftime(d, '%m-%d') <= '01-07' THEN 0.35
        WHEN strftime(d, '%m-%d') BETWEEN '03-25' AND '04-06' THEN 0.45
        WHEN strftime(d, '%m-%d') BETWEEN '04-29' AND '05-05' THEN 0.55
        WHEN strftime(d, '%m-%d') BETWEEN '07-21' AND '08-31' THEN 0.40
        ELSE 1.0
    END
);

-- Weekend dip: students and teachers rest, guardians look in more evenly.
CREATE TEMP MACRO kp_weekday_factor(d, role) AS (
    CASE
        WHEN dayofweek(d) IN (0, 6) AND role = 'guardian' THEN 0.85
        WHEN dayofweek(d) = 6 THEN 0.45
        WHEN dayofweek(d) = 0 THEN 0.38
        ELSE 1.0
    END
);

CREATE TEMP TABLE kp_days AS
SELECT
    d::DATE AS day,
    (d::DATE - DATE '2000-01-01') AS day_no,
    -- Growth: +45% a year from the first day.
    1.0 + 0.45 * ((d::DATE - (date_trunc('year', getvariable('mart_end')::DATE) - INTERVAL 2 YEAR)::DATE) / 365.0) AS growth
FROM generate_series(
    (date_trunc('year', getvariable('mart_end')::DATE) - INTERVAL 2 YEAR)::TIMESTAMP,
    getvariable('mart_end')::TIMESTAMP,
    INTERVAL 1 DAY
) AS t(d);

CREATE TEMP TABLE kp_roles AS SELECT * FROM (VALUES
    ('student', 1, 42000), ('teacher', 2, 3100), ('guardian', 3, 7800)) AS t(role, role_no, base);

CREATE TEMP TABLE kp_school_types AS SELECT * FROM (VALUES
    ('小学校', 1, 0.50), ('中学校', 2, 0.32), ('高校', 3, 0.18)) AS t(school_type, type_no, share);

-- Prefectures with a weight close to their population (10,000s of people).
CREATE TEMP TABLE kp_prefectures AS SELECT * FROM (VALUES
    ('北海道', 1, 514), ('青森県', 2, 120), ('岩手県', 3, 118), ('宮城県', 4, 228), ('秋田県', 5, 93),
    ('山形県', 6, 104), ('福島県', 7, 179), ('茨城県', 8, 284), ('栃木県', 9, 191), ('群馬県', 10, 191),
    ('埼玉県', 11, 734), ('千葉県', 12, 627), ('東京都', 13, 1404), ('神奈川県', 14, 923), ('新潟県', 15, 213),
    ('富山県', 16, 102), ('石川県', 17, 111), ('福井県', 18, 75), ('山梨県', 19, 80), ('長野県', 20, 201),
    ('岐阜県', 21, 194), ('静岡県', 22, 355), ('愛知県', 23, 748), ('三重県', 24, 174), ('滋賀県', 25, 140),
    ('京都府', 26, 253), ('大阪府', 27, 878), ('兵庫県', 28, 537), ('奈良県', 29, 130), ('和歌山県', 30, 90),
    ('鳥取県', 31, 54), ('島根県', 32, 65), ('岡山県', 33, 185), ('広島県', 34, 275), ('山口県', 35, 131),
    ('徳島県', 36, 70), ('香川県', 37, 93), ('愛媛県', 38, 130), ('高知県', 39, 67), ('福岡県', 40, 510),
    ('佐賀県', 41, 80), ('長崎県', 42, 128), ('熊本県', 43, 172), ('大分県', 44, 111), ('宮崎県', 45, 105),
    ('鹿児島県', 46, 156), ('沖縄県', 47, 147)) AS t(prefecture, pref_no, weight);

-- The incident the example alerts catch: Fukuoka's schools' network filter blocked the
-- app for six days (24 to 19 days before the end); active users there fell to about a
-- third, then recovered. Every other prefecture is untouched.
CREATE TEMP MACRO kp_fukuoka_outage(d, prefecture) AS (
    CASE WHEN prefecture = '福岡県'
          AND d BETWEEN getvariable('mart_end')::DATE - 24 AND getvariable('mart_end')::DATE - 19
         THEN 0.35 ELSE 1.0 END
);

CREATE OR REPLACE TABLE mart.daily_active_users AS
SELECT
    d.day AS activity_date,
    r.role,
    s.school_type,
    p.prefecture,
    CAST(round(
        r.base * s.share * (p.weight / 12406.0) * d.growth
        * kp_school_factor(d.day) * kp_weekday_factor(d.day, r.role)
        * (0.90 + 0.20 * kp_noise(d.day_no, r.role_no * 1000 + s.type_no * 100 + p.pref_no))
        * kp_fukuoka_outage(d.day, p.prefecture)
    ) AS INTEGER) AS active_users
FROM kp_days d, kp_roles r, kp_school_types s, kp_prefectures p
ORDER BY activity_date, role, school_type, prefecture;

CREATE TEMP TABLE kp_subjects AS SELECT * FROM (VALUES
    ('国語', 1, 61000, 5200), ('算数・数学', 2, 84000, 7900), ('英語', 3, 57000, 4800),
    ('理科', 4, 38000, 2600), ('社会', 5, 33000, 2300)) AS t(subject, subject_no, minutes_per_day, submissions_per_day);

CREATE OR REPLACE TABLE mart.daily_study AS
SELECT
    d.day AS activity_date,
    j.subject,
    CAST(round(j.minutes_per_day * d.growth * kp_school_factor(d.day) * kp_weekday_factor(d.day, 'student')
        * (0.88 + 0.24 * kp_noise(d.day_no, 7000 + j.subject_no))) AS BIGINT) AS study_minutes,
    CAST(round(j.submissions_per_day * d.growth
        * (CASE WHEN kp_school_factor(d.day) < 1.0 THEN 0.2 ELSE 1.0 END)
        * (CASE WHEN dayofweek(d.day) IN (0, 6) THEN 0.15 ELSE 1.0 END)
        * (0.85 + 0.30 * kp_noise(d.day_no, 8000 + j.subject_no))) AS BIGINT) AS submissions
FROM kp_days d, kp_subjects j
ORDER BY activity_date, subject;

CREATE TEMP TABLE kp_channels AS SELECT * FROM (VALUES
    ('organic', 1, 120), ('referral', 2, 45), ('ads', 3, 80), ('school_contract', 4, 160)) AS t(channel, channel_no, per_day);

CREATE OR REPLACE TABLE mart.daily_signups AS
SELECT
    d.day AS signup_date,
    c.channel,
    CAST(round(c.per_day * d.growth
        -- New-school-year rush in March and April; contracts sign in bursts.
        * (CASE WHEN month(d.day) IN (3, 4) THEN 2.2 WHEN month(d.day) = 9 THEN 1.4 ELSE 1.0 END)
        * (CASE WHEN dayofweek(d.day) IN (0, 6) AND c.channel = 'school_contract' THEN 0.05
                WHEN dayofweek(d.day) IN (0, 6) THEN 0.7 ELSE 1.0 END)
        * (0.6 + 0.8 * kp_noise(d.day_no, 9000 + c.channel_no))) AS INTEGER) AS signups
FROM kp_days d, kp_channels c
ORDER BY signup_date, channel;

CREATE TEMP TABLE kp_devices AS SELECT * FROM (VALUES
    ('desktop', 1, 21000, 6.1), ('mobile', 2, 34000, 3.4), ('tablet', 3, 26000, 4.8)) AS t(device, device_no, sessions_per_day, pages_per_session);

-- Web traffic follows school activity, and mobile keeps up at weekends.
CREATE TEMP MACRO kp_web_factor(d, device) AS (
    (0.55 + 0.45 * kp_school_factor(d))
    * (CASE WHEN dayofweek(d) IN (0, 6) AND device = 'mobile' THEN 0.95
            WHEN dayofweek(d) IN (0, 6) THEN 0.55 ELSE 1.0 END)
);

-- Web analytics had a one-day tracking outage (no rows) 400 days before the end:
-- charts must show it as a gap, not a zero.
CREATE OR REPLACE TABLE mart.web_traffic AS
SELECT
    d.day AS visit_date,
    v.device,
    CAST(round(v.sessions_per_day * d.growth * kp_web_factor(d.day, v.device)
        * (0.9 + 0.2 * kp_noise(d.day_no, 10000 + v.device_no))) AS BIGINT) AS sessions,
    CAST(round(v.sessions_per_day * v.pages_per_session * d.growth * kp_web_factor(d.day, v.device)
        * (0.85 + 0.3 * kp_noise(d.day_no, 11000 + v.device_no))) AS BIGINT) AS page_views
FROM kp_days d, kp_devices v
WHERE d.day <> getvariable('mart_end')::DATE - 400
ORDER BY visit_date, device;

-- Targets kept in the mart, as a planning team maintains them (a dbt seed, a sheet
-- loaded nightly): one row per metric, period and dimension value (`dimension` and
-- `member` NULL for the total). Here the ads channel's monthly sign-up target: its
-- average day that month, over the whole month, plus 5 %, to the hundred.
CREATE OR REPLACE TABLE mart.kpi_targets AS
SELECT
    'signups' AS metric,
    'month' AS per,
    CAST(date_trunc('month', signup_date) AS DATE) AS period_start,
    CAST(round(avg(signups) * day(last_day(min(signup_date))) * 1.05, -2) AS INTEGER) AS target,
    'channel' AS dimension,
    'ads' AS member
FROM mart.daily_signups
WHERE channel = 'ads'
GROUP BY 3
ORDER BY period_start;

CREATE OR REPLACE TABLE mart.kpibot_demo_build AS
SELECT getvariable('mart_end')::DATE AS data_through, 3 AS mart_version;
