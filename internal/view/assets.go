package view

import "embed"

// assets is the page: index.html, its script and style, and the libraries
// it uses under assets/vendor (uPlot for the charts, Cytoscape.js for the
// graphs), each with its licence.
//
//go:embed assets
var assets embed.FS
