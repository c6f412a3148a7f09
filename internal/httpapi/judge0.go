package httpapi

import "github.com/gin-gonic/gin"

// judge0Routes serves Judge0 CE's API under /judge0.
func (s *Server) judge0Routes(r *gin.Engine) {}
