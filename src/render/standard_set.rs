//! The standard chart set used by the render benchmark and the matplotlib comparison: the
//! same numbers, generated the same way in both (see `scripts/bench_matplotlib.py`).

use chrono::NaiveDate;

use super::data::{ChartData, Series, XAxis};
use crate::spec::ChartKind;
use crate::warehouse::{Cell, ColumnInfo, ColumnType, Table};

pub struct StandardChart {
    pub name: &'static str,
    pub title: String,
    pub kind: ChartKind,
    pub data: ChartData,
    pub table: Option<Table>,
}

/// Deterministic "noise" in 0..1, the same formula as the Python script's.
pub fn wobble(i: usize, k: usize) -> f64 {
    (((i * 7919 + k * 104_729) % 1000) as f64) / 1000.0
}

fn ninety_days() -> ChartData {
    let start = NaiveDate::from_ymd_opt(2026, 8, 28).expect("valid date");
    let days: Vec<NaiveDate> = start.iter_days().take(90).collect();
    let names = ["student", "guardian", "teacher"];
    let bases = [90_000.0, 17_000.0, 7_000.0];
    let series = names
        .iter()
        .enumerate()
        .map(|(k, name)| Series {
            name: name.to_string(),
            values: (0..90)
                .map(|i| {
                    let weekend = if i % 7 >= 5 { 0.45 } else { 1.0 };
                    Some((bases[k] * weekend * (0.9 + 0.2 * wobble(i, k))).round())
                })
                .collect(),
        })
        .collect();
    ChartData {
        x: XAxis::Dates(days),
        series,
    }
}

fn twelve_months() -> ChartData {
    let months: Vec<String> = (1..=12).map(|m| format!("2026/{m:02}")).collect();
    let channels = ["organic", "referral", "ads", "school_contract"];
    let series = channels
        .iter()
        .enumerate()
        .map(|(k, name)| Series {
            name: name.to_string(),
            values: (0..12)
                .map(|i| Some((1000.0 * (k + 1) as f64 * (0.7 + 0.6 * wobble(i, k))).round()))
                .collect(),
        })
        .collect();
    ChartData {
        x: XAxis::Categories(months),
        series,
    }
}

fn twenty_rows() -> Table {
    let prefectures = [
        "東京都",
        "神奈川県",
        "大阪府",
        "愛知県",
        "埼玉県",
        "千葉県",
        "兵庫県",
        "北海道",
        "福岡県",
        "静岡県",
        "茨城県",
        "広島県",
        "京都府",
        "宮城県",
        "新潟県",
        "長野県",
        "岐阜県",
        "群馬県",
        "栃木県",
        "岡山県",
    ];
    Table {
        bytes_processed: None,
        columns: vec![
            ColumnInfo {
                name: "prefecture".into(),
                ty: ColumnType::Text,
            },
            ColumnInfo {
                name: "users".into(),
                ty: ColumnType::Integer,
            },
            ColumnInfo {
                name: "share".into(),
                ty: ColumnType::Float,
            },
        ],
        rows: prefectures
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let users = 14_000 - i as i64 * 600;
                vec![
                    Cell::Text(p.to_string()),
                    Cell::Integer(users),
                    Cell::Float(users as f64 / 1_220.0),
                ]
            })
            .collect(),
    }
}

/// The four standard charts.
pub fn standard_set() -> Vec<StandardChart> {
    let line = ninety_days();
    vec![
        StandardChart {
            name: "line_90d_3_series",
            title: "日次アクティブユーザー (DAU)".into(),
            kind: ChartKind::Line,
            data: line.clone(),
            table: None,
        },
        StandardChart {
            name: "stacked_bar_12_months",
            title: "New sign-ups by channel".into(),
            kind: ChartKind::StackedBar,
            data: twelve_months(),
            table: None,
        },
        StandardChart {
            name: "kpi_card",
            title: "アクティブユーザー".into(),
            kind: ChartKind::Number,
            data: line,
            table: None,
        },
        StandardChart {
            name: "table_20_rows",
            title: "都道府県別アクティブユーザー".into(),
            kind: ChartKind::Table,
            data: ChartData {
                x: XAxis::Categories(vec![]),
                series: vec![],
            },
            table: Some(twenty_rows()),
        },
    ]
}
