export { lineChart, type Series } from './charts/lineChart.js';
export { scatterChart } from './charts/scatterChart.js';
export { type ReportChart, renderReport, reportCharts } from './html.js';
export { loadRun } from './loadRun.js';
export type { ReportRun } from './runRecords.js';
export { type WriteReportOptions, writeReport } from './writeReport.js';
