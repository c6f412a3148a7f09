package httpapi

import "github.com/gin-gonic/gin"

// pistonRoutes serves Piston's API v2 under /api/v2.
func (s *Server) pistonRoutes(r *gin.Engine) {}
